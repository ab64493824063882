import type { Hash } from 'node:crypto';
import { choleskyLower, forwardSubstitute } from './cholesky.js';
import { DenseRowSums } from './simd/dense-sums.js';

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
  /**
   * Per feature, side by side so that one cache line serves a look-up: [first posting, posting
   * count] for a posting list, [-1 - dense row, 0] for a dense row.
   */
  private readonly featureRefs: Int32Array;
  /** Postings as (task, value) pairs, task as Int32 and value as Float32 over one buffer. */
  private readonly postingTasks: Int32Array;
  private readonly postingValues: Float32Array;
  // Single precision: half the memory an encode reads, which is mostly cache misses under load.
  private readonly denseRows: Float32Array;
  private readonly denseSums: DenseRowSums;
  private readonly lower: Float64Array;
  private readonly similarities: Float64Array;
  private readonly solved: Float64Array;

  constructor(centroids: readonly SparseVector[], vocabularySize: number) {
    const n = centroids.length;
    this.dimensions = n;
    this.similarities = new Float64Array(n);
    this.solved = new Float64Array(n);
    const offsets = new Int32Array(vocabularySize + 1);
    for (const centroid of centroids) for (let i = 0; i < centroid.length; i++) offsets[centroid.ids[i] + 1]++;
    for (let i = 0; i < vocabularySize; i++) offsets[i + 1] += offsets[i];
    const fill = offsets.slice(0, vocabularySize);
    const tasks = new Int32Array(offsets[vocabularySize]);
    const values = new Float32Array(offsets[vocabularySize]);
    centroids.forEach((centroid, task) => {
      for (let i = 0; i < centroid.length; i++) {
        const at = fill[centroid.ids[i]]++;
        tasks[at] = task;
        values[at] = centroid.values[i];
      }
    });
    const gram = new Float64Array(n * n);
    for (let id = 0; id < vocabularySize; id++) {
      for (let a = offsets[id]; a < offsets[id + 1]; a++) {
        const row = tasks[a] * n;
        const value = values[a];
        for (let b = offsets[id]; b <= a; b++) gram[row + tasks[b]] += value * values[b];
      }
    }
    this.lower = choleskyLower(gram, n);

    const pairs = new ArrayBuffer(8 * offsets[vocabularySize]);
    this.postingTasks = new Int32Array(pairs);
    this.postingValues = new Float32Array(pairs);
    this.featureRefs = new Int32Array(2 * vocabularySize);
    let rows = 0;
    let postings = 0;
    for (let id = 0; id < vocabularySize; id++) {
      const count = offsets[id + 1] - offsets[id];
      if (count * DENSE_ABOVE_SHARE >= n) {
        this.featureRefs[2 * id] = -1 - rows++;
        continue;
      }
      this.featureRefs[2 * id] = 2 * postings;
      this.featureRefs[2 * id + 1] = count;
      for (let p = offsets[id]; p < offsets[id + 1]; p++, postings++) {
        this.postingTasks[2 * postings] = tasks[p];
        this.postingValues[2 * postings + 1] = values[p];
      }
    }
    this.denseRows = new Float32Array(rows * n);
    for (let id = 0; id < vocabularySize; id++) {
      const row = -1 - this.featureRefs[2 * id];
      if (row < 0) continue;
      for (let p = offsets[id]; p < offsets[id + 1]; p++) this.denseRows[row * n + tasks[p]] = values[p];
    }
    this.denseSums = new DenseRowSums(this.denseRows, rows, n);
  }

  project(vector: SparseVector): Float32Array {
    const { featureRefs, postingTasks, postingValues, denseSums, dimensions } = this;
    const similarities = this.similarities.fill(0);
    denseSums.clear();
    for (let i = 0; i < vector.length; i++) {
      const at = 2 * vector.ids[i];
      const ref = featureRefs[at];
      const value = vector.values[i];
      if (ref < 0) {
        denseSums.add(-1 - ref, value);
        continue;
      }
      for (let p = ref, end = ref + 2 * featureRefs[at + 1]; p < end; p += 2) similarities[postingTasks[p]] += value * postingValues[p + 1];
    }
    // Dense rows are most of an encode's arithmetic: summed by a SIMD kernel.
    const dense = denseSums.sum();
    for (let t = 0; t < dimensions; t++) similarities[t] += dense[t];
    return forwardSubstitute(this.lower, this.dimensions, similarities, new Float32Array(this.dimensions), this.solved);
  }

  hashInto(hash: Hash): void {
    hash.update(`centroid-span:${this.dimensions}`);
    hash.update(new Uint8Array(this.lower.buffer));
    hash.update(new Uint8Array(this.postingValues.buffer));
    hash.update(new Uint8Array(this.denseRows.buffer));
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
