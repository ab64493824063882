import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRegistry } from '../src/registry/load.js';
import { bestAdapterOf, RegistryError } from '../src/registry/types.js';
import { FLAN_TASKS } from './helpers/gateway.js';

let files = 0;
function file(_t: unknown, name: string, content: string): string {
  const path = join(t.testdirName, `${files++}-${name}`);
  writeFileSync(path, content);
  return path;
}
t.testdir({});

t.test('loads the FLAN task pool (JSONL)', async (t) => {
  const registry = loadRegistry(FLAN_TASKS);
  t.equal(registry.tasks.length, 66);
  t.ok(registry.tasks.every((task) => task.examples.length === 20));
  const sst2 = registry.tasks.find((task) => task.id === 'sst2')!;
  t.equal(sst2.domain, 'sentiment');
  t.equal(bestAdapterOf(sst2), 'sst2', 'own adapter by default');
  t.ok(registry.adapters.has('wmt16_translate_deen'));
});

t.test('JSONL errors name file, line and reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['{"task":"a","inputs":"x"}\n{not json}\n', /:2: invalid JSON/],
    ['{"task":"a","inputs":"x"}\n\n{"task":"a"}\n', /:3: "inputs" must be a non-empty string/],
    ['{"task":"a","inputs":"x","colour":1}\n', /:1: unknown field "colour"/],
    ['[1,2]\n', /:1: each line must be a JSON object/],
    ['{"task":"a","inputs":"x","domain":"nli"}\n{"task":"a","inputs":"y","domain":"qa"}\n', /:2: task "a" has domain "nli"/],
    ['{"task":"a","inputs":"x","adapter":"p"}\n{"task":"a","inputs":"y","adapter":"q"}\n', /:2: task "a" maps to adapter "p" on line 1/],
    ['\n\n', /no tasks found/],
  ];
  for (const [content, pattern] of cases) {
    const path = file(t, 'tasks.jsonl', content);
    t.throws(() => loadRegistry(path), pattern, pattern.source);
    try {
      loadRegistry(path);
    } catch (error) {
      t.type(error, RegistryError);
      t.match((error as Error).message, path);
    }
  }
});

t.test('JSONL adapter field maps a task to another adapter', async (t) => {
  const path = file(t, 'tasks.jsonl', '{"task":"imdb","inputs":"great film","adapter":"sentiment"}\n{"task":"imdb","inputs":"awful"}\n');
  const registry = loadRegistry(path);
  t.equal(bestAdapterOf(registry.tasks[0]), 'sentiment');
  t.same([...registry.adapters.keys()], ['sentiment']);
});

t.test('YAML registry with calibration scores', async (t) => {
  const path = file(
    t,
    'registry.yaml',
    `adapters:
  - id: sst2
    path: /adapters/sst2
  - id: imdb
    path: /adapters/imdb
tasks:
  - id: sst2
    domain: sentiment
    examples: ["good movie", "bad movie"]
  - id: yelp
    domain: sentiment
    description: restaurant reviews
    examples: ["the food was cold"]
    adapters: { sst2: 0.81, imdb: 0.84 }
  - id: tie
    examples: ["x"]
    adapters: { imdb: 0.5, tie: 0.5 }
`,
  );
  const registry = loadRegistry(path);
  t.equal(registry.tasks.length, 3);
  t.equal(registry.adapters.get('sst2')?.path, '/adapters/sst2');
  t.equal(bestAdapterOf(registry.tasks[1]), 'imdb', 'highest score wins');
  t.equal(bestAdapterOf(registry.tasks[2]), 'tie', 'own adapter on ties');
  t.equal(bestAdapterOf(registry.tasks[1], new Set(['imdb'])), 'sst2', 'next best when excluded');
  t.equal(bestAdapterOf(registry.tasks[0], new Set(['sst2'])), undefined, 'no adapter left');
});

t.test('YAML and JSON registry errors carry the line', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['r.yaml', 'tasks:\n  - id: a\n    examples: []\n', /r\.yaml:3: tasks\.0\.examples: must not have fewer than 1 items/i],
    ['r.yaml', 'tasks:\n  - id: a\n    examples: ["x"]\n    colour: red\n', /r\.yaml:4: tasks\.0\.colour: unknown key/],
    ['r.yaml', 'tasks:\n  - id: a\n    examples: ["x"]\n  - id: a\n    examples: ["y"]\n', /r\.yaml:4: duplicate task id "a"/],
    ['r.yaml', 'adapters:\n  - id: p\ntasks:\n  - id: a\n    examples: ["x"]\n    adapters: { q: 1 }\n', /r\.yaml:6: task "a" scores unknown adapter "q"/],
    ['r.yaml', 'tasks: [\n', /r\.yaml:\d+: /],
    ['r.json', '{"tasks": 3}', /r\.json:1: tasks: must be array/],
    ['r.txt', 'x', /unknown task file type/],
  ];
  for (const [name, content, pattern] of cases) t.throws(() => loadRegistry(file(t, name, content)), pattern, pattern.source);
  t.throws(() => loadRegistry('/nonexistent/tasks.jsonl'), /cannot read task file \(ENOENT\)/);
});

t.test('no task file: the demo registry', async (t) => {
  const registry = loadRegistry(undefined);
  t.ok(registry.tasks.length >= 5);
  t.equal(registry.source, 'built-in demo registry');
});

t.test('base examples: YAML base_examples, JSONL "task": null, the built-in default set', async (t) => {
  const { DEFAULT_BASE_EXAMPLES, withDefaultBaseExamples, exampleGroups } = await import('../src/registry/base-examples.js');
  const yaml = loadRegistry(file(t, 'r.yaml', 'base_examples: ["hi there", "tell me a joke"]\ntasks:\n  - id: a\n    examples: ["x y"]\n'));
  t.same(yaml.baseExamples, ['hi there', 'tell me a joke']);
  const jsonl = loadRegistry(
    file(t, 'r.jsonl', '{"task": "a", "inputs": "x y"}\n{"task": null, "inputs": "good morning"}\n{"task": null, "inputs": "thanks!"}\n'),
  );
  t.same(jsonl.baseExamples, ['good morning', 'thanks!']);
  t.same(jsonl.tasks.map((task) => task.id), ['a'], 'a base example is no task');
  t.throws(() => loadRegistry(file(t, 'bad.jsonl', '{"task": null, "inputs": "hi", "adapter": "a"}\n{"task": "a", "inputs": "x"}\n')), /bad\.jsonl:1: a base example/);
  t.throws(() => loadRegistry(file(t, 'bad.yaml', 'base_examples: [""]\ntasks:\n  - id: a\n    examples: ["x"]\n')), /base_examples\.0/);
  t.equal(withDefaultBaseExamples(jsonl, true), jsonl, 'a registry with its own base examples keeps them');
  const none = loadRegistry(file(t, 'none.jsonl', '{"task": "a", "inputs": "x y"}\n'));
  t.same(withDefaultBaseExamples(none, true).baseExamples, DEFAULT_BASE_EXAMPLES);
  t.same(withDefaultBaseExamples(none, false).baseExamples ?? [], []);
  t.same(exampleGroups(none.tasks, ['hi']), [...none.tasks, { examples: ['hi'] }], 'base examples are one more group to fit on');
  t.same(exampleGroups(none.tasks, []), none.tasks);
});
