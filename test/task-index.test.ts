import t from 'tap';
import { cosine } from '../src/router/math.js';
import { TaskIndex } from '../src/router/task-index.js';

function randomVectors(count: number, dimensions: number, seed: number): Float32Array[] {
  let state = seed;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: count }, () => Float32Array.from({ length: dimensions }, random));
}

t.test('small registries are scanned exactly; large ones use HNSW; both give the true nearest tasks', async (t) => {
  const tasks = randomVectors(300, 32, 7);
  const ids = tasks.map((_, i) => `task_${i}`);
  const exact = new TaskIndex(ids, tasks);
  const hnsw = new TaskIndex(ids, tasks, { exactScanMaxNumbers: 0 });
  for (const query of randomVectors(20, 32, 11)) {
    const truth = tasks.map((task, i) => ({ id: ids[i], similarity: cosine(query, task) })).sort((a, b) => b.similarity - a.similarity).slice(0, 5);
    const scanned = exact.search(query, 5);
    t.same(scanned.map((x) => x.id), truth.map((x) => x.id), 'exact scan: the true top 5, in order');
    scanned.forEach((x, i) => t.ok(Math.abs(x.similarity - truth[i].similarity) < 1e-5, 'exact cosine'));
    const searched = hnsw.search(query, 5);
    t.same(searched.map((x) => x.id), truth.map((x) => x.id), 'HNSW: the same top 5 on an easy index');
    searched.forEach((x, i) => t.ok(Math.abs(x.similarity - truth[i].similarity) < 1e-4, 'HNSW cosine'));
  }
});

t.test('exact scan: ties keep the lower label first, k larger than the index, zero query', async (t) => {
  const a = Float32Array.from([1, 0]);
  const index = new TaskIndex(['a', 'b', 'c'], [a, Float32Array.from([2, 0]), Float32Array.from([0, 1])]);
  t.same(index.search(Float32Array.from([1, 0]), 2).map((x) => x.id), ['a', 'b'], 'equal similarity: label order');
  t.same(index.search(Float32Array.from([0, 3]), 10).map((x) => x.id), ['c', 'a', 'b']);
  t.same(index.search(Float32Array.from([0, 0]), 2), [{ id: 'a', similarity: 0 }, { id: 'b', similarity: 0 }]);
});
