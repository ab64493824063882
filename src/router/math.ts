/** Pure LoRAuter math: no I/O, called directly by tests. */

export interface ScoredTask {
  id: string;
  similarity: number;
}

export interface WeightedTask extends ScoredTask {
  weight: number;
}

export interface WeightedAdapter {
  id: string;
  weight: number;
}

/** softmax(x / temperature), stable for large inputs. */
export function softmax(values: readonly number[], temperature: number): number[] {
  if (!(temperature > 0)) throw new RangeError('temperature must be > 0');
  // Plain loops: this runs for every routed prompt, on a handful of values.
  let max = -Infinity;
  for (const value of values) max = Math.max(max, value);
  const weights = new Array<number>(values.length);
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += weights[i] = Math.exp((values[i] - max) / temperature);
  for (let i = 0; i < values.length; i++) weights[i] /= sum;
  return weights;
}

/** The k most similar, highest first; equal similarities keep the id order so results are deterministic. */
export function topK<T extends ScoredTask>(scored: readonly T[], k: number): T[] {
  return [...scored].sort(bySimilarityThenId).slice(0, Math.max(0, k));
}

export function bySimilarityThenId(a: ScoredTask, b: ScoredTask): number {
  return b.similarity - a.similarity || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function weighTasks(tasks: readonly ScoredTask[], temperature: number): WeightedTask[] {
  const weights = softmax(tasks.map((task) => task.similarity), temperature);
  return tasks.map((task, i) => ({ id: task.id, similarity: task.similarity, weight: weights[i] }));
}

/** Replaces each task by its adapter and sums the weights of tasks sharing an adapter; heaviest first. */
export function tasksToAdapters(tasks: readonly WeightedTask[], adapterOf: (taskId: string) => string | undefined): WeightedAdapter[] {
  // At most top_k (64) entries: a linear search beats a Map here.
  const adapters: WeightedAdapter[] = [];
  for (const task of tasks) {
    const id = adapterOf(task.id);
    if (id === undefined) continue;
    const seen = adapters.find((adapter) => adapter.id === id);
    if (seen) seen.weight += task.weight;
    else adapters.push({ id, weight: task.weight });
  }
  return adapters.sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Renormalised mean of L2-normalised vectors: a task's embedding from its examples' embeddings. */
export function meanOfNormalized(vectors: readonly Float32Array[]): Float32Array {
  if (vectors.length === 0) throw new Error('no vectors to average');
  const mean = new Float32Array(vectors[0].length);
  for (const vector of vectors) {
    const norm = vectorNorm(vector);
    if (norm === 0) continue;
    for (let i = 0; i < vector.length; i++) mean[i] += vector[i] / norm;
  }
  const norm = vectorNorm(mean);
  if (norm > 0) for (let i = 0; i < mean.length; i++) mean[i] /= norm;
  return mean;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** The vectors L2-normalised, row-major in one array (a zero vector stays zero). */
export function unitRowMatrix(vectors: readonly Float32Array[], dimensions: number): Float32Array {
  const rows = new Float32Array(vectors.length * dimensions);
  vectors.forEach((vector, row) => {
    const norm = vectorNorm(vector);
    if (norm > 0) for (let d = 0; d < dimensions; d++) rows[row * dimensions + d] = vector[d] / norm;
  });
  return rows;
}

export function vectorNorm(vector: Float32Array): number {
  return Math.sqrt(dotAt(vector, 0, vector, vector.length));
}

/**
 * rows[start .. start+n) · query[0 .. n): four partial sums, so that the additions do not wait on
 * each other (about three times faster than one running sum in V8).
 */
export function dotAt(rows: Float32Array, start: number, query: Float32Array, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (let at = start; d + 3 < n; d += 4, at += 4) {
    s0 += rows[at] * query[d];
    s1 += rows[at + 1] * query[d + 1];
    s2 += rows[at + 2] * query[d + 2];
    s3 += rows[at + 3] * query[d + 3];
  }
  for (; d < n; d++) s0 += rows[start + d] * query[d];
  return s0 + s1 + (s2 + s3);
}
