import t from 'tap';
import { cosine, meanOfNormalized, softmax, tasksToAdapters, topK, weighTasks } from '../src/router/math.js';

t.test('softmax over sim/τ', async (t) => {
  const weights = softmax([0.9, 0.7, 0.5], 0.2);
  const expected = [Math.exp(4.5), Math.exp(3.5), Math.exp(2.5)];
  const sum = expected.reduce((a, b) => a + b);
  weights.forEach((w, i) => t.ok(Math.abs(w - expected[i] / sum) < 1e-12, `weight ${i}`));
  t.ok(Math.abs(weights.reduce((a, b) => a + b) - 1) < 1e-12, 'sums to 1');
  t.same(softmax([1000, 1000], 0.01), [0.5, 0.5], 'stable for large inputs');
  t.same(softmax([], 0.2), []);
  t.throws(() => softmax([1], 0), RangeError);
  t.throws(() => softmax([1], -1), RangeError);
  const sharp = softmax([0.5, 0.4], 0.001);
  t.ok(sharp[0] > 0.999, 'low temperature approaches argmax');
  const flat = softmax([0.5, 0.4], 1000);
  t.ok(Math.abs(flat[0] - 0.5) < 1e-3, 'high temperature approaches uniform');
});

t.test('topK sorts by similarity, ties by id, and clamps k', async (t) => {
  const scored = [
    { id: 'b', similarity: 0.5 },
    { id: 'a', similarity: 0.5 },
    { id: 'c', similarity: 0.9 },
    { id: 'd', similarity: 0.1 },
  ];
  t.same(topK(scored, 3).map((s) => s.id), ['c', 'a', 'b']);
  t.same(topK(scored, 10).length, 4);
  t.same(topK(scored, 0), []);
});

t.test('tasksToAdapters sums duplicates and orders by weight', async (t) => {
  const tasks = weighTasks(
    [
      { id: 'imdb', similarity: 0.8 },
      { id: 'sst2', similarity: 0.75 },
      { id: 'yelp', similarity: 0.7 },
    ],
    0.2,
  );
  const adapterOf = (id: string) => ({ imdb: 'sentiment-lora', sst2: 'sst2', yelp: 'sentiment-lora' })[id];
  const adapters = tasksToAdapters(tasks, adapterOf);
  t.same(adapters.map((a) => a.id), ['sentiment-lora', 'sst2']);
  t.ok(Math.abs(adapters[0].weight - (tasks[0].weight + tasks[2].weight)) < 1e-12, 'duplicate weights added');
  t.ok(Math.abs(adapters.reduce((s, a) => s + a.weight, 0) - 1) < 1e-12);
  t.same(tasksToAdapters(tasks, () => undefined), [], 'tasks without adapter drop out');
});

t.test('meanOfNormalized renormalises the mean of unit vectors', async (t) => {
  const mean = meanOfNormalized([new Float32Array([3, 0]), new Float32Array([0, 10])]);
  t.ok(Math.abs(mean[0] - Math.SQRT1_2) < 1e-6 && Math.abs(mean[1] - Math.SQRT1_2) < 1e-6, 'long vectors do not dominate');
  t.ok(Math.abs(cosine(mean, new Float32Array([1, 1])) - 1) < 1e-6);
  t.same(cosine(new Float32Array([0, 0]), new Float32Array([1, 0])), 0);
  t.throws(() => meanOfNormalized([]));
});
