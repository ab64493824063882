import t from 'tap';
import { withModelField } from '../src/upstreams/model-field.js';

// A small deterministic generator (no seed library needed): the same cases on every run.
function random(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

const TRICKY_STRINGS = ['model', '"model":"x"', 'a \\" b', '\\', '{[', '}]', ',"model":1', 'ünï\u2028cødé', '', ' '];

function value(next: () => number, depth: number): unknown {
  const pick = next();
  if (depth > 3 || pick < 0.35) return TRICKY_STRINGS[Math.floor(next() * TRICKY_STRINGS.length)];
  if (pick < 0.45) return Math.round(next() * 1e6) / 100;
  if (pick < 0.5) return [true, false, null][Math.floor(next() * 3)];
  if (pick < 0.75) return Array.from({ length: Math.floor(next() * 4) }, () => value(next, depth + 1));
  return object(next, depth + 1);
}

function object(next: () => number, depth: number): Record<string, unknown> {
  const keys = ['id', 'object', 'model', 'choices', 'usage', 'model ', 'Model', '"model"'];
  const result: Record<string, unknown> = {};
  for (let i = Math.floor(next() * 6); i > 0; i--) result[keys[Math.floor(next() * keys.length)]] = value(next, depth);
  return result;
}

t.test('the top-level model is renamed and nothing else changes, whatever the answer holds', async (t) => {
  const next = random(7);
  let renamed = 0;
  for (let i = 0; i < 3000; i++) {
    const answer = object(next, 0);
    const text = JSON.stringify(answer, null, [0, 1, 2][i % 3]);
    const expected = 'model' in answer ? { ...answer, model: 'lorauter' } : answer;
    if ('model' in answer) renamed++;
    t.same(JSON.parse(withModelField(text, 'lorauter')), expected, text);
  }
  t.ok(renamed > 500, `${renamed} answers had a model to rename`);
});

t.test('the rest of the text is kept byte for byte; odd inputs pass as they came', async (t) => {
  const chunk = '{"id":"c1","object":"chat.completion.chunk","model":"sst2","choices":[{"delta":{"content":"the \\"model\\": x"}}],"usage":{"model":"nested"}}';
  t.equal(withModelField(chunk, 'lorauter'), chunk.replace('"model":"sst2"', '"model":"lorauter"'));
  t.equal(withModelField('{ "model" : "a" , "b": 1}', 'x'), '{ "model" : "x" , "b": 1}');
  t.equal(withModelField('{"mod\\u0065l":"a"}', 'x'), '{"mod\\u0065l":"x"}', 'an escaped spelling of the key');
  t.equal(withModelField('{"model":{"name":"a","tags":["}"]},"n":2}', 'x'), '{"model":"x","n":2}', 'a non-string value replaced whole');
  t.equal(withModelField('{"model":null}', 'a "quoted" name'), '{"model":"a \\"quoted\\" name"}', 'the new name is JSON-escaped');
  for (const text of ['[{"model":"a"}]', '"model"', 'not json', '', '{"choices":[{"model":"a"}]}', '{"a":"model","b":["model"]}']) {
    t.equal(withModelField(text, 'x'), text, `unchanged: ${text}`);
  }
});
