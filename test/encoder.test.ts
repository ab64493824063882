import t from 'tap';
import { BuiltinEncoder } from '../src/encoders/builtin/builtin-encoder.js';
import { cosine } from '../src/router/math.js';
import { loadRegistry } from '../src/registry/load.js';
import { FLAN_TASKS } from './helpers/gateway.js';

const tasks = [
  { examples: ['Translate to English: Guten Morgen', 'Translate this German text: Ich bin müde'] },
  { examples: ['Is this review positive or negative? great film', 'Sentiment of: awful plot'] },
  { examples: ['Summarize the article: the council voted', 'TL;DR: the company reported profits'] },
];

t.test('deterministic, fixed length, fingerprinted', async (t) => {
  const a = BuiltinEncoder.fit(tasks);
  const b = BuiltinEncoder.fit(tasks);
  t.equal(a.fingerprint, b.fingerprint, 'same fit, same fingerprint');
  t.match(a.fingerprint, /^ngram-tfidf:[0-9a-f]{16}$/);
  const [x, y] = await a.encode(['Translate to English: Hallo Welt', 'Translate to English: Hallo Welt']);
  t.same(Array.from(x), Array.from(y));
  t.equal(x.length, a.dimensions);
  t.equal(a.dimensions, 3, 'exact projection has one dimension per task');
  t.not(BuiltinEncoder.fit(tasks.slice(0, 2)).fingerprint, a.fingerprint, 'other examples, other fingerprint');
  t.not(BuiltinEncoder.fit(tasks, { charBlockWeight: 0.3 }).fingerprint, a.fingerprint, 'other options, other fingerprint');
  t.not(BuiltinEncoder.fit(tasks, { maxDimensions: 2 }).fingerprint, a.fingerprint, 'other projection, other fingerprint');
});

t.test('the exact projection keeps dot products with task centroids', async (t) => {
  const encoder = BuiltinEncoder.fit(tasks);
  const [query] = await encoder.encode(['Please translate into English: Wie geht es dir?']);
  // The encoder's dense vector of a task centroid is L^T e_t; its dot product with a query is q·c_t.
  const centroids = await Promise.all(tasks.map(async (task) => {
    const vectors = await encoder.encode(task.examples);
    return vectors;
  }));
  const sims = centroids.map((vectors) => Math.max(...vectors.map((v) => cosine(v, query))));
  t.equal(sims.indexOf(Math.max(...sims)), 0, 'translation is nearest');
});

t.test('unknown text gives a zero vector; hashing beyond maxDimensions', async (t) => {
  const encoder = BuiltinEncoder.fit(tasks);
  const [zero] = await encoder.encode(['']);
  t.ok(zero.every((v) => v === 0));
  const hashed = BuiltinEncoder.fit(tasks, { maxDimensions: 2 });
  t.equal(hashed.dimensions, 2);
  const [v] = await hashed.encode(['Translate to English: Hallo']);
  t.ok(v.some((x) => x !== 0));
});

t.test('separates real FLAN tasks', async (t) => {
  const registry = loadRegistry(FLAN_TASKS);
  const fit = registry.tasks.map((task) => ({ examples: task.examples.slice(0, 15) }));
  const encoder = BuiltinEncoder.fit(fit);
  t.equal(encoder.dimensions, 66);
  const ids = registry.tasks.map((task) => task.id);
  const sst2 = registry.tasks[ids.indexOf('sst2')];
  const [a, b] = await encoder.encode([sst2.examples[16], registry.tasks[ids.indexOf('wmt16_translate_deen')].examples[16]]);
  const [c] = await encoder.encode([sst2.examples[17]]);
  t.ok(cosine(a, c) > cosine(a, b), 'two sst2 prompts closer than sst2 and translation');
});
