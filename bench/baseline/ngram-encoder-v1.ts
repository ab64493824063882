// The n-gram encoder as it was before the fast rewrite (issue 6), kept only as the benchmark baseline.
import { createHash } from 'node:crypto';
import { choleskyLower, forwardSubstitute } from '../../src/encoders/builtin/cholesky.js';
import type { Encoder } from '../../src/encoders/encoder.js';
import { blockOf, countFeatures, DEFAULT_NGRAMS, WORD_BLOCK, type NgramOptions } from './ngram-features-v1.js';

export interface NgramEncoderOptions extends NgramOptions {
  /** Weight of the character block against the word block (each is L2-normalised first). */
  charBlockWeight: number;
  /** Exact projection up to this many tasks; beyond it, signed feature hashing to this many dimensions. */
  maxDimensions: number;
}

export const DEFAULT_NGRAM_ENCODER_OPTIONS: NgramEncoderOptions = { ...DEFAULT_NGRAMS, charBlockWeight: 0.5, maxDimensions: 1024 };

const VERSION = 'ngram-tfidf/1';

interface SparseVector {
  indices: number[];
  values: number[];
}

/** The part of the encoder that turns the sparse weighted vector into a dense one. */
interface Projection {
  readonly dimensions: number;
  project(vector: SparseVector): Float32Array;
  hashInto(hash: ReturnType<typeof createHash>): void;
}

/**
 * Embedded default encoder: sublinear TF × inverse-task-frequency over word and character n-grams,
 * fitted on the registry's examples. Dense vectors come from one of two projections:
 * - up to `maxDimensions` tasks, an orthonormal basis of the span of the task centroids
 *   (Cholesky of their Gram matrix), which keeps every dot product with a centroid exact;
 * - beyond, signed feature hashing (bounded size, slightly noisier).
 */
export class NgramEncoder implements Encoder {
  readonly kind = 'ngram-tfidf';
  readonly fingerprint: string;
  readonly dimensions: number;

  private constructor(
    private readonly options: NgramEncoderOptions,
    private readonly vocabulary: Map<string, number>,
    private readonly weights: Float32Array,
    private readonly blocks: Uint8Array,
    private readonly projection: Projection,
  ) {
    this.dimensions = projection.dimensions;
    const hash = createHash('sha256');
    hash.update(VERSION).update(JSON.stringify(options));
    for (const key of vocabulary.keys()) hash.update(key).update('\u0000');
    hash.update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
    projection.hashInto(hash);
    this.fingerprint = `${this.kind}:${hash.digest('hex').slice(0, 16)}`;
  }

  static fit(tasks: readonly { examples: readonly string[] }[], options: Partial<NgramEncoderOptions> = {}): NgramEncoder {
    const settings: NgramEncoderOptions = { ...DEFAULT_NGRAM_ENCODER_OPTIONS, ...options };
    if (tasks.length === 0) throw new Error('cannot fit an encoder on no tasks');
    const vocabulary = new Map<string, number>();
    const taskFrequency: number[] = [];
    for (const task of tasks) {
      const counts = new Map<string, number>();
      for (const example of task.examples) countFeatures(example, settings, counts);
      for (const key of counts.keys()) {
        let id = vocabulary.get(key);
        if (id === undefined) {
          id = vocabulary.size;
          vocabulary.set(key, id);
          taskFrequency.push(0);
        }
        taskFrequency[id]++;
      }
    }
    const weights = new Float32Array(vocabulary.size);
    const blocks = new Uint8Array(vocabulary.size);
    for (const [key, id] of vocabulary) {
      weights[id] = Math.log((1 + tasks.length) / (1 + taskFrequency[id])) + 1;
      blocks[id] = blockOf(key);
    }
    const partial = new NgramEncoder(settings, vocabulary, weights, blocks, new HashedProjection(settings.maxDimensions, vocabulary));
    if (tasks.length > settings.maxDimensions) return partial;
    const centroids = tasks.map((task) => partial.centroidOf(task.examples));
    return new NgramEncoder(settings, vocabulary, weights, blocks, new CentroidSpanProjection(centroids, vocabulary.size));
  }

  async encode(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((text) => this.encodeOne(text));
  }

  encodeOne(text: string): Float32Array {
    return this.projection.project(this.sparse(text));
  }

  /** Sublinear TF × weight per block, each block L2-normalised, blocks combined, unit length overall. */
  sparse(text: string): SparseVector {
    const counts = countFeatures(text, this.options);
    const indices: number[] = [];
    const values: number[] = [];
    const blockSquares = [0, 0];
    for (const [key, count] of counts) {
      const id = this.vocabulary.get(key);
      if (id === undefined) continue;
      const value = (1 + Math.log(count)) * this.weights[id];
      indices.push(id);
      values.push(value);
      blockSquares[this.blocks[id]] += value * value;
    }
    const blockWeights = [1, this.options.charBlockWeight];
    const total = Math.sqrt(blockWeights.reduce((sum, weight, block) => sum + (blockSquares[block] > 0 ? weight * weight : 0), 0));
    const scales = blockSquares.map((square, block) => (square > 0 ? blockWeights[block] / Math.sqrt(square) / total : 0));
    for (let i = 0; i < values.length; i++) values[i] *= scales[this.blocks[indices[i]] === WORD_BLOCK ? 0 : 1];
    return { indices, values };
  }

  private centroidOf(examples: readonly string[]): SparseVector {
    const sum = new Map<number, number>();
    for (const example of examples) {
      const vector = this.sparse(example);
      vector.indices.forEach((id, i) => sum.set(id, (sum.get(id) ?? 0) + vector.values[i]));
    }
    let square = 0;
    for (const value of sum.values()) square += value * value;
    const scale = square > 0 ? 1 / Math.sqrt(square) : 0;
    return { indices: [...sum.keys()], values: [...sum.values()].map((value) => value * scale) };
  }
}

class HashedProjection implements Projection {
  private readonly buckets: Int32Array;
  private readonly signs: Int8Array;

  constructor(
    readonly dimensions: number,
    vocabulary: Map<string, number>,
  ) {
    this.buckets = new Int32Array(vocabulary.size);
    this.signs = new Int8Array(vocabulary.size);
    for (const [key, id] of vocabulary) {
      const hash = fnv1a(key);
      this.buckets[id] = (hash & 0x7fffffff) % dimensions;
      this.signs[id] = hash < 0 ? -1 : 1;
    }
  }

  project(vector: SparseVector): Float32Array {
    const out = new Float32Array(this.dimensions);
    vector.indices.forEach((id, i) => {
      out[this.buckets[id]] += this.signs[id] * vector.values[i];
    });
    return out;
  }

  hashInto(hash: ReturnType<typeof createHash>): void {
    hash.update(`hashed:${this.dimensions}`);
  }
}

class CentroidSpanProjection implements Projection {
  readonly dimensions: number;
  private readonly offsets: Int32Array;
  private readonly postingTasks: Int32Array;
  private readonly postingValues: Float64Array;
  private readonly lower: Float64Array;

  constructor(centroids: SparseVector[], vocabularySize: number) {
    const n = centroids.length;
    this.dimensions = n;
    this.offsets = new Int32Array(vocabularySize + 1);
    for (const centroid of centroids) for (const id of centroid.indices) this.offsets[id + 1]++;
    for (let i = 0; i < vocabularySize; i++) this.offsets[i + 1] += this.offsets[i];
    const fill = this.offsets.slice(0, vocabularySize);
    this.postingTasks = new Int32Array(this.offsets[vocabularySize]);
    this.postingValues = new Float64Array(this.offsets[vocabularySize]);
    centroids.forEach((centroid, task) => {
      centroid.indices.forEach((id, i) => {
        const at = fill[id]++;
        this.postingTasks[at] = task;
        this.postingValues[at] = centroid.values[i];
      });
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
  }

  project(vector: SparseVector): Float32Array {
    const similarities = new Float64Array(this.dimensions);
    vector.indices.forEach((id, i) => {
      const value = vector.values[i];
      for (let p = this.offsets[id]; p < this.offsets[id + 1]; p++) similarities[this.postingTasks[p]] += value * this.postingValues[p];
    });
    return forwardSubstitute(this.lower, this.dimensions, similarities, new Float32Array(this.dimensions));
  }

  hashInto(hash: ReturnType<typeof createHash>): void {
    hash.update(`centroid-span:${this.dimensions}`);
    hash.update(new Uint8Array(this.lower.buffer));
    hash.update(new Uint8Array(this.postingValues.buffer));
  }
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}
