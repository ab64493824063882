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

t.test('HNSW after a change: updated in place, same answers as a fresh index, the old index still safe; rebuilt when deletions pile up', async (t) => {
  const vectors = randomVectors(400, 32, 3);
  const ids = vectors.map((_, i) => `task_${i}`);
  const hnsw = { exactScanMaxNumbers: 0 };
  const first = await TaskIndex.next(undefined, ids.slice(0, 300), vectors.slice(0, 300), new Set(ids), hnsw);
  const truthOf = (index: { ids: string[]; vectors: Float32Array[] }, query: Float32Array) =>
    index.ids.map((id, i) => ({ id, similarity: cosine(query, index.vectors[i]) })).sort((a, b) => b.similarity - a.similarity).slice(0, 5).map((x) => x.id);

  // Add 20 tasks, replace 10 (new vectors), delete 10.
  const replaced = new Map(ids.slice(0, 10).map((id, i) => [id, vectors[390 + i]]));
  const nextIds = [...ids.slice(0, 290).filter((id) => !['task_100', 'task_101'].includes(id)), ...ids.slice(300, 320)];
  const nextVectors = nextIds.map((id) => replaced.get(id) ?? vectors[ids.indexOf(id)]);
  const changed = new Set([...replaced.keys(), ...ids.slice(300, 320)]);
  const second = await TaskIndex.next(first, nextIds, nextVectors, changed, hnsw);
  t.ok(second.sharesGraphWith(first), 'the same graph, updated in place');
  for (const query of randomVectors(20, 32, 17)) {
    t.same(second.search(query, 5).map((x) => x.id), truthOf({ ids: nextIds, vectors: nextVectors }, query), 'the true top 5 of the changed registry');
    const old = first.search(query, 5).map((x) => x.id);
    t.ok(old.every((id) => ids.slice(0, 300).includes(id)), 'never a task added after it');
    t.ok(old.every((id) => !replaced.has(id) && id !== 'task_100' && id !== 'task_101'), 'nor one deleted or replaced since');
  }
  // Deleting more than a quarter of the live tasks builds a new graph.
  const fewer = nextIds.slice(0, 150);
  const third = await TaskIndex.next(second, fewer, fewer.map((id) => nextVectors[nextIds.indexOf(id)]), new Set(), hnsw);
  t.notOk(third.sharesGraphWith(second), 'a fresh graph');
  for (const query of randomVectors(10, 32, 23)) {
    t.same(third.search(query, 5).map((x) => x.id), truthOf({ ids: fewer, vectors: fewer.map((id) => nextVectors[nextIds.indexOf(id)]) }, query));
  }
  // The graph grows past its first capacity.
  const many = await TaskIndex.next(third, [...fewer, ...ids.slice(320, 400).map((id) => `${id}_new`)], [...fewer.map((id) => nextVectors[nextIds.indexOf(id)]), ...vectors.slice(320, 400)], new Set(ids.slice(320, 400).map((id) => `${id}_new`)), hnsw);
  t.equal(many.size, 230);
  t.equal(many.search(vectors[330], 1)[0].id, 'task_330_new');
});
