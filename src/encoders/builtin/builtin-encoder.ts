import { createHash } from 'node:crypto';
import type { Encoder } from '../encoder.js';
import { FeatureTable } from './feature-table.js';
import { CHAR_BLOCK, DEFAULT_NGRAMS, NgramHasher, WORD_BLOCK, type NgramOptions } from './ngram-hasher.js';
import { CentroidSpanProjection, HashedProjection, type Projection, type SparseVector } from './projection.js';

export interface BuiltinEncoderOptions extends NgramOptions {
  /** Weight of the character block against the word block (each is L2-normalised first). */
  charBlockWeight: number;
  /** Exact projection up to this many tasks; beyond it, signed feature hashing to this many dimensions. */
  maxDimensions: number;
  /** Added to log((1 + tasks) / (1 + task frequency)): 1 keeps features found in every task, 0 drops them. */
  idfOffset: number;
}

export const DEFAULT_BUILTIN_ENCODER_OPTIONS: BuiltinEncoderOptions = { ...DEFAULT_NGRAMS, charBlockWeight: 0.5, maxDimensions: 1024, idfOffset: 1 };

const VERSION = 'ngram-tfidf/2';

/**
 * Embedded default encoder: sublinear TF × inverse-task-frequency over word and character n-grams,
 * fitted on the registry's examples. N-grams are hashed from char codes into a typed-array table
 * and counted in reused buffers, so encoding allocates little beyond the normalised text and the
 * output. Dense vectors come from one of two projections:
 * - up to `maxDimensions` tasks, an orthonormal basis of the span of the task centroids, which
 *   keeps every dot product with a centroid exact;
 * - beyond, signed feature hashing (bounded size, slightly noisier).
 * Encoding is synchronous and not re-entrant, which JavaScript's single thread guarantees.
 */
export class BuiltinEncoder implements Encoder {
  readonly kind = 'ngram-tfidf';
  readonly fingerprint: string;
  readonly dimensions: number;
  private readonly hasher: NgramHasher;
  private readonly counts: Float64Array;
  private sparseVector: SparseVector;

  private constructor(
    private readonly options: BuiltinEncoderOptions,
    private readonly vocabulary: Vocabulary,
    private readonly weights: Float64Array,
    private readonly projection: Projection,
  ) {
    this.dimensions = projection.dimensions;
    this.hasher = new NgramHasher(options);
    this.counts = new Float64Array(vocabulary.features.size);
    this.sparseVector = { ids: new Int32Array(256), values: new Float64Array(256), length: 0 };
    const hash = createHash('sha256');
    hash.update(VERSION).update(JSON.stringify(options));
    const keys = vocabulary.features.keysInIdOrder();
    hash.update(new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength));
    hash.update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
    projection.hashInto(hash);
    this.fingerprint = `${this.kind}:${hash.digest('hex').slice(0, 16)}`;
  }

  static fit(tasks: readonly { examples: readonly string[] }[], options: Partial<BuiltinEncoderOptions> = {}): BuiltinEncoder {
    const settings: BuiltinEncoderOptions = { ...DEFAULT_BUILTIN_ENCODER_OPTIONS, ...options };
    if (tasks.length === 0) throw new Error('cannot fit an encoder on no tasks');
    const builder = new VocabularyBuilder(settings);
    tasks.forEach((task, t) => {
      for (const example of task.examples) builder.addExample(example, t);
    });
    const vocabulary = builder.build();
    const weights = new Float64Array(vocabulary.features.size);
    for (let id = 0; id < weights.length; id++) weights[id] = Math.log((1 + tasks.length) / (1 + builder.taskFrequency[id])) + settings.idfOffset;
    const hashed = new HashedProjection(settings.maxDimensions, vocabulary.features.keysInIdOrder());
    const partial = new BuiltinEncoder(settings, vocabulary, weights, hashed);
    if (tasks.length > settings.maxDimensions) return partial;
    const centroids = tasks.map((task) => partial.centroidOf(task.examples));
    return new BuiltinEncoder(settings, vocabulary, weights, new CentroidSpanProjection(centroids, weights.length));
  }

  async encode(texts: readonly string[]): Promise<Float32Array[]> {
    return texts.map((text) => this.encodeOne(text));
  }

  encodeOne(text: string): Float32Array {
    return this.projection.project(this.sparse(text));
  }

  /**
   * Sublinear TF × weight per block, each block L2-normalised, blocks combined, unit length overall.
   * The returned vector is a reused buffer, valid until the next call.
   */
  sparse(text: string): SparseVector {
    const { hasher, counts, weights } = this;
    const { features, blocks, tokens, tokenOffsets, tokenFeatures } = this.vocabulary;
    hasher.scan(text);
    // Unique features of a text are at most its word n-grams plus its character n-grams.
    let ids = this.sparseVector.ids;
    const bound = hasher.wordCount + this.options.charNgrams.length * (hasher.codeCount + 2 * hasher.tokenCount);
    if (ids.length < bound) ids = new Int32Array(bound);
    let length = 0;
    for (let i = 0; i < hasher.wordCount; i++) {
      const id = features.get(hasher.wordKeys1[i], hasher.wordKeys2[i]);
      if (id < 0) continue;
      if (counts[id]++ === 0) ids[length++] = id;
    }
    for (let t = 0; t < hasher.tokenCount; t++) {
      const known = tokens.get(hasher.tokenKeys1[t], hasher.tokenKeys2[t]);
      if (known >= 0) {
        for (let p = tokenOffsets[known]; p < tokenOffsets[known + 1]; p++) {
          const id = tokenFeatures[p];
          if (counts[id]++ === 0) ids[length++] = id;
        }
        continue;
      }
      const found = hasher.charNgrams(t);
      for (let i = 0; i < found; i++) {
        const id = features.get(hasher.charKeys1[i], hasher.charKeys2[i]);
        if (id < 0) continue;
        if (counts[id]++ === 0) ids[length++] = id;
      }
    }
    let values = this.sparseVector.values;
    if (values.length < ids.length) values = new Float64Array(ids.length);
    let wordSquare = 0;
    let charSquare = 0;
    for (let i = 0; i < length; i++) {
      const id = ids[i];
      const value = (1 + Math.log(counts[id])) * weights[id];
      counts[id] = 0;
      values[i] = value;
      if (blocks[id] === WORD_BLOCK) wordSquare += value * value;
      else charSquare += value * value;
    }
    const charWeight = this.options.charBlockWeight;
    const total = Math.sqrt((wordSquare > 0 ? 1 : 0) + (charSquare > 0 ? charWeight * charWeight : 0));
    const wordScale = wordSquare > 0 ? 1 / Math.sqrt(wordSquare) / total : 0;
    const charScale = charSquare > 0 ? charWeight / Math.sqrt(charSquare) / total : 0;
    for (let i = 0; i < length; i++) values[i] *= blocks[ids[i]] === WORD_BLOCK ? wordScale : charScale;
    this.sparseVector = { ids, values, length };
    return this.sparseVector;
  }

  private centroidOf(examples: readonly string[]): SparseVector {
    const sum = new Map<number, number>();
    for (const example of examples) {
      const vector = this.sparse(example);
      for (let i = 0; i < vector.length; i++) sum.set(vector.ids[i], (sum.get(vector.ids[i]) ?? 0) + vector.values[i]);
    }
    let square = 0;
    for (const value of sum.values()) square += value * value;
    const scale = square > 0 ? 1 / Math.sqrt(square) : 0;
    return {
      ids: Int32Array.from(sum.keys()),
      values: Float64Array.from(sum.values(), (value) => value * scale),
      length: sum.size,
    };
  }
}

/**
 * The fitted feature space: n-gram keys to feature ids, each feature's block, and every
 * whitespace token seen while fitting with its character n-gram feature ids, so that a known
 * token's character n-grams are looked up once instead of hashed one by one.
 */
interface Vocabulary {
  features: FeatureTable;
  blocks: Uint8Array;
  tokens: FeatureTable;
  tokenOffsets: Int32Array;
  tokenFeatures: Int32Array;
}

class VocabularyBuilder {
  readonly taskFrequency: number[] = [];
  private readonly features = new FeatureTable(1 << 16);
  private readonly tokens = new FeatureTable(1 << 14);
  private readonly blocks: number[] = [];
  private readonly lastTask: number[] = [];
  private readonly tokenOffsets: number[] = [0];
  private readonly tokenFeatures: number[] = [];
  private readonly hasher: NgramHasher;

  constructor(options: NgramOptions) {
    this.hasher = new NgramHasher(options);
  }

  addExample(text: string, task: number): void {
    const hasher = this.hasher;
    hasher.scan(text);
    for (let i = 0; i < hasher.wordCount; i++) this.seen(this.feature(hasher.wordKeys1[i], hasher.wordKeys2[i], WORD_BLOCK), task);
    for (let t = 0; t < hasher.tokenCount; t++) {
      let token = this.tokens.get(hasher.tokenKeys1[t], hasher.tokenKeys2[t]);
      if (token < 0) {
        token = this.tokens.add(hasher.tokenKeys1[t], hasher.tokenKeys2[t]);
        const found = hasher.charNgrams(t);
        for (let i = 0; i < found; i++) this.tokenFeatures.push(this.feature(hasher.charKeys1[i], hasher.charKeys2[i], CHAR_BLOCK));
        this.tokenOffsets.push(this.tokenFeatures.length);
      }
      for (let p = this.tokenOffsets[token]; p < this.tokenOffsets[token + 1]; p++) this.seen(this.tokenFeatures[p], task);
    }
  }

  build(): Vocabulary {
    return {
      features: this.features,
      blocks: Uint8Array.from(this.blocks),
      tokens: this.tokens,
      tokenOffsets: Int32Array.from(this.tokenOffsets),
      tokenFeatures: Int32Array.from(this.tokenFeatures),
    };
  }

  private feature(key1: number, key2: number, block: number): number {
    const id = this.features.add(key1, key2);
    if (id === this.blocks.length) {
      this.blocks.push(block);
      this.taskFrequency.push(0);
      this.lastTask.push(-1);
    }
    return id;
  }

  private seen(id: number, task: number): void {
    if (this.lastTask[id] === task) return;
    this.lastTask[id] = task;
    this.taskFrequency[id]++;
  }
}
