import type { Hash } from 'node:crypto';
import { choleskyLower, forwardSubstitute } from './cholesky.js';

/** A sparse vector: `length` pairs of (feature id, value); the arrays may be longer. */
export interface SparseVector {
  ids: Int32Array;
  values: Float64Array;
  length: number;
}

/** A feature in at least 1/DENSE_ABOVE_SHARE of the tasks gets a dense row. */
const DENSE_ABOVE_SHARE = 4;

/** Turns the encoder's sparse weighted vector into its dense embedding. */
export interface Projection {
  readonly dimensions: number;
  project(vector: SparseVector): Float32Array;
  hashInto(hash: Hash): void;
}

/**
 * Orthonormal basis of the span of the task centroids (Cholesky of their Gram matrix): the dense
 * vector y = L⁻¹·C·x has y·(L row t) = x·c_t, so every dot product with a task centroid is exact.
 * Cost: the prompt's features times their posting lists, plus one n×n triangular solve. Features
 * found in many tasks (character unigrams, template words) keep a dense row instead of a posting
 * list: same arithmetic, but contiguous.
 */
export class CentroidSpanProjection implements Projection {
  readonly dimensions: number;
  private readonly offsets: Int32Array;
  private readonly postingTasks: Int32Array;
  // Single precision: half the memory an encode reads, which is mostly cache misses under load.
  private readonly postingValues: Float32Array;
  private readonly denseRowOf: Int32Array;
  private readonly denseRows: Float32Array;
  private readonly lower: Float64Array;
  private readonly similarities: Float64Array;
  private readonly solved: Float64Array;
  // Reused per call: the prompt's dense rows (start offsets) and their values.
  private denseStarts = new Int32Array(256);
  private denseValues = new Float64Array(256);

  constructor(centroids: readonly SparseVector[], vocabularySize: number) {
    const n = centroids.length;
    this.dimensions = n;
    this.similarities = new Float64Array(n);
    this.solved = new Float64Array(n);
    this.offsets = new Int32Array(vocabularySize + 1);
    for (const centroid of centroids) for (let i = 0; i < centroid.length; i++) this.offsets[centroid.ids[i] + 1]++;
    for (let i = 0; i < vocabularySize; i++) this.offsets[i + 1] += this.offsets[i];
    const fill = this.offsets.slice(0, vocabularySize);
    this.postingTasks = new Int32Array(this.offsets[vocabularySize]);
    this.postingValues = new Float32Array(this.offsets[vocabularySize]);
    centroids.forEach((centroid, task) => {
      for (let i = 0; i < centroid.length; i++) {
        const at = fill[centroid.ids[i]]++;
        this.postingTasks[at] = task;
        this.postingValues[at] = centroid.values[i];
      }
    });
    const gram = new Float64Array(n * n);
    for (let id = 0; id < vocabularySize; id++) {
      for (let a = this.offsets[id]; a < this.offsets[id + 1]; a++) {
        const row = this.postingTasks[a] * n;
        const value = this.postingValues[a];
        for (let b = this.offsets[id]; b <= a; b++) gram[row + this.postingTasks[b]] += value * this.postingValues[b];
      }
    }
    this.lower = choleskyLower(gram, n);

    this.denseRowOf = new Int32Array(vocabularySize).fill(-1);
    let rows = 0;
    for (let id = 0; id < vocabularySize; id++) {
      if ((this.offsets[id + 1] - this.offsets[id]) * DENSE_ABOVE_SHARE >= n) this.denseRowOf[id] = rows++;
    }
    this.denseRows = new Float32Array(rows * n);
    for (let id = 0; id < vocabularySize; id++) {
      const row = this.denseRowOf[id];
      if (row < 0) continue;
      for (let p = this.offsets[id]; p < this.offsets[id + 1]; p++) this.denseRows[row * n + this.postingTasks[p]] = this.postingValues[p];
    }
  }

  project(vector: SparseVector): Float32Array {
    const { offsets, postingTasks, postingValues, denseRowOf, denseRows, dimensions } = this;
    if (this.denseStarts.length < vector.length) {
      this.denseStarts = new Int32Array(2 * vector.length);
      this.denseValues = new Float64Array(2 * vector.length);
    }
    const { denseStarts, denseValues } = this;
    let dense = 0;
    for (let i = 0; i < vector.length; i++) {
      const row = denseRowOf[vector.ids[i]];
      if (row < 0) continue;
      denseStarts[dense] = row * dimensions;
      denseValues[dense++] = vector.values[i];
    }
    // Dense rows are most of an encode's arithmetic: four tasks at a time, summed in registers.
    const similarities = this.similarities;
    let t = 0;
    for (; t + 3 < dimensions; t += 4) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let j = 0; j < dense; j++) {
        const at = denseStarts[j] + t;
        const value = denseValues[j];
        s0 += value * denseRows[at];
        s1 += value * denseRows[at + 1];
        s2 += value * denseRows[at + 2];
        s3 += value * denseRows[at + 3];
      }
      similarities[t] = s0;
      similarities[t + 1] = s1;
      similarities[t + 2] = s2;
      similarities[t + 3] = s3;
    }
    for (; t < dimensions; t++) {
      let sum = 0;
      for (let j = 0; j < dense; j++) sum += denseValues[j] * denseRows[denseStarts[j] + t];
      similarities[t] = sum;
    }
    for (let i = 0; i < vector.length; i++) {
      const id = vector.ids[i];
      if (denseRowOf[id] >= 0) continue;
      const value = vector.values[i];
      for (let p = offsets[id]; p < offsets[id + 1]; p++) similarities[postingTasks[p]] += value * postingValues[p];
    }
    return forwardSubstitute(this.lower, this.dimensions, similarities, new Float32Array(this.dimensions), this.solved);
  }

  hashInto(hash: Hash): void {
    hash.update(`centroid-span:${this.dimensions}`);
    hash.update(new Uint8Array(this.lower.buffer));
    hash.update(new Uint8Array(this.postingValues.buffer));
  }
}

/** Signed feature hashing to a fixed number of dimensions, for registries too large for the exact basis. */
export class HashedProjection implements Projection {
  private readonly buckets: Int32Array;
  private readonly signs: Float64Array;

  constructor(
    readonly dimensions: number,
    keysInIdOrder: Int32Array,
  ) {
    const size = keysInIdOrder.length / 2;
    this.buckets = new Int32Array(size);
    this.signs = new Float64Array(size);
    for (let id = 0; id < size; id++) {
      const mixed = Math.imul(keysInIdOrder[2 * id] ^ Math.imul(keysInIdOrder[2 * id + 1], 0x85ebca6b), 0xc2b2ae35);
      this.buckets[id] = (mixed & 0x7fffffff) % dimensions;
      this.signs[id] = mixed < 0 ? -1 : 1;
    }
  }

  project(vector: SparseVector): Float32Array {
    const out = new Float32Array(this.dimensions);
    for (let i = 0; i < vector.length; i++) out[this.buckets[vector.ids[i]]] += this.signs[vector.ids[i]] * vector.values[i];
    return out;
  }

  hashInto(hash: Hash): void {
    hash.update(`hashed:${this.dimensions}`);
  }
}
