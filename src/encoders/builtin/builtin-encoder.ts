import { createHash } from 'node:crypto';
import type { Encoder } from '../encoder.js';
import { FeatureTable } from './feature-table.js';
import { CentroidSpanProjection, HashedProjection, type Projection, type SparseVector } from './projection.js';
import { isSpace, TextScanner } from './text-scanner.js';

export interface BuiltinEncoderOptions {
  wordNgrams: readonly number[];
  /** Weight of the character block against the word block (each is L2-normalised first). */
  charBlockWeight: number;
  /** Exact projection up to this many tasks; beyond it, signed feature hashing to this many dimensions. */
  maxDimensions: number;
}

export const DEFAULT_BUILTIN_ENCODER_OPTIONS: BuiltinEncoderOptions = { wordNgrams: [1, 2], charBlockWeight: 0.5, maxDimensions: 1024 };

const VERSION = 'ngram-tfidf/2';
const SPACE_CODE = 32;

/**
 * Embedded default encoder, fitted on the registry's examples: sublinear TF × inverse task
 * frequency over two blocks, each L2-normalised, then weighted and combined to unit length:
 * - words: word 1–2-grams, punctuation marks counted as words (FLAN templates differ in them);
 * - characters: character unigrams of the whitespace tokens, each token padded with a space on
 *   both sides (they carry language and script; longer character n-grams cost ten times as much
 *   to encode and routed no better on the FLAN pool).
 * Word n-grams are hashed from char codes into a typed-array table, characters index a table by
 * code, counts live in reused buffers: encoding allocates little beyond the normalised text and the
 * output. Dense vectors come from one of two projections: up to `maxDimensions` tasks an
 * orthonormal basis of the span of the task centroids (every dot product with a centroid exact),
 * beyond it signed feature hashing. Encoding is synchronous and not re-entrant, which JavaScript's
 * single thread guarantees.
 */
export class BuiltinEncoder implements Encoder {
  readonly kind = 'ngram-tfidf';
  readonly fingerprint: string;
  readonly dimensions: number;
  private readonly scanner: TextScanner;
  // Per feature, side by side so that one cache line serves both: its weight (Float64 at 2·id) and
  // the prompt's count of it (Int32 at 4·id + 2).
  private readonly weights: Float64Array;
  private readonly counts: Int32Array;
  private vector: SparseVector = { ids: new Int32Array(512), values: new Float64Array(512), length: 0 };

  private constructor(
    private readonly options: BuiltinEncoderOptions,
    private readonly vocabulary: Vocabulary,
    private readonly projection: Projection,
  ) {
    this.dimensions = projection.dimensions;
    this.scanner = new TextScanner(options.wordNgrams);
    const perFeature = new ArrayBuffer(16 * vocabulary.weights.length);
    this.weights = new Float64Array(perFeature);
    this.counts = new Int32Array(perFeature);
    vocabulary.weights.forEach((weight, id) => (this.weights[2 * id] = weight));
    const hash = createHash('sha256');
    hash.update(VERSION).update(JSON.stringify(options));
    const keys = vocabulary.features.keysInIdOrder();
    hash.update(new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength));
    hash.update(new Uint8Array(vocabulary.weights.buffer, vocabulary.weights.byteOffset, vocabulary.weights.byteLength));
    projection.hashInto(hash);
    this.fingerprint = `${this.kind}:${hash.digest('hex').slice(0, 16)}`;
  }

  static fit(tasks: readonly { examples: readonly string[] }[], options: Partial<BuiltinEncoderOptions> = {}): BuiltinEncoder {
    const settings: BuiltinEncoderOptions = { ...DEFAULT_BUILTIN_ENCODER_OPTIONS, ...options };
    if (tasks.length === 0) throw new Error('cannot fit an encoder on no tasks');
    const builder = new VocabularyBuilder(settings.wordNgrams);
    tasks.forEach((task, t) => {
      for (const example of task.examples) builder.addExample(example, t);
    });
    const vocabulary = builder.build(tasks.length);
    const hashed = new HashedProjection(settings.maxDimensions, vocabulary.features.keysInIdOrder());
    const partial = new BuiltinEncoder(settings, vocabulary, hashed);
    if (tasks.length > settings.maxDimensions) return partial;
    const centroids = tasks.map((task) => partial.centroidOf(task.examples));
    return new BuiltinEncoder(settings, vocabulary, new CentroidSpanProjection(centroids, vocabulary.weights.length));
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
    const { scanner, counts, weights } = this;
    const { features, charIdOf } = this.vocabulary;
    scanner.scan(text);
    let vector = this.vector;
    const bound = scanner.wordNgramCount + scanner.codeCount + 1;
    if (vector.ids.length < bound) vector = this.vector = { ids: new Int32Array(2 * bound), values: new Float64Array(2 * bound), length: 0 };
    const { ids, values } = vector;
    let length = 0;
    for (let i = 0; i < scanner.wordNgramCount; i++) {
      const id = features.get(scanner.keys1[i], scanner.keys2[i]);
      if (id < 0) continue;
      if (counts[4 * id + 2]++ === 0) ids[length++] = id;
    }
    const wordEnd = length;
    const codes = scanner.codes;
    for (let i = 0; i < scanner.codeCount; i++) {
      const id = charIdOf[codes[i]];
      if (id < 0 || isSpace(codes[i])) continue;
      if (counts[4 * id + 2]++ === 0) ids[length++] = id;
    }
    const paddingId = charIdOf[SPACE_CODE];
    if (scanner.tokenCount > 0 && paddingId >= 0) {
      if (counts[4 * paddingId + 2] === 0) ids[length++] = paddingId;
      counts[4 * paddingId + 2] += 2 * scanner.tokenCount;
    }
    let wordSquare = 0;
    let charSquare = 0;
    for (let i = 0; i < length; i++) {
      const id = ids[i];
      const value = (1 + Math.log(counts[4 * id + 2])) * weights[2 * id];
      counts[4 * id + 2] = 0;
      values[i] = value;
      if (i < wordEnd) wordSquare += value * value;
      else charSquare += value * value;
    }
    const charWeight = this.options.charBlockWeight;
    const total = Math.sqrt((wordSquare > 0 ? 1 : 0) + (charSquare > 0 ? charWeight * charWeight : 0));
    const wordScale = wordSquare > 0 ? 1 / Math.sqrt(wordSquare) / total : 0;
    const charScale = charSquare > 0 ? charWeight / Math.sqrt(charSquare) / total : 0;
    for (let i = 0; i < length; i++) values[i] *= i < wordEnd ? wordScale : charScale;
    vector.length = length;
    return vector;
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
    return { ids: Int32Array.from(sum.keys()), values: Float64Array.from(sum.values(), (value) => value * scale), length: sum.size };
  }
}

/** The fitted feature space: word n-gram keys and character codes to feature ids, and each feature's weight. */
interface Vocabulary {
  /** Word n-gram keys and character keys (code, CHAR_KEY) to feature ids. */
  features: FeatureTable;
  /** Feature id of each UTF-16 code unit, -1 when never seen: the table, looked up without hashing. */
  charIdOf: Int32Array;
  weights: Float64Array;
}

// Second half of a character's key; word n-gram keys are hashes, so a clash needs a 64-bit collision.
const CHAR_KEY = 0x7f4a7c15;

class VocabularyBuilder {
  private readonly features = new FeatureTable(1 << 16);
  private readonly charIdOf = new Int32Array(65536).fill(-1);
  private readonly taskFrequency: number[] = [];
  private readonly lastTask: number[] = [];
  private readonly scanner: TextScanner;

  constructor(wordNgrams: readonly number[]) {
    this.scanner = new TextScanner(wordNgrams);
  }

  addExample(text: string, task: number): void {
    const scanner = this.scanner;
    scanner.scan(text);
    for (let i = 0; i < scanner.wordNgramCount; i++) this.seen(this.features.add(scanner.keys1[i], scanner.keys2[i]), task);
    for (let i = 0; i < scanner.codeCount; i++) if (!isSpace(scanner.codes[i])) this.seen(this.charFeature(scanner.codes[i]), task);
    if (scanner.tokenCount > 0) this.seen(this.charFeature(SPACE_CODE), task);
  }

  /**
   * Renumbers the features from the most to the least widespread, so that the ones nearly every
   * prompt has (characters, template words) sit together in the per-feature arrays and stay in
   * the CPU cache between requests.
   */
  build(taskCount: number): Vocabulary {
    const byFrequency = Array.from(this.taskFrequency.keys()).sort((a, b) => this.taskFrequency[b] - this.taskFrequency[a] || a - b);
    const renumbered = new Int32Array(byFrequency.length);
    byFrequency.forEach((id, rank) => (renumbered[id] = rank));
    const keys = this.features.keysInIdOrder();
    // Fuller than while building (it no longer grows): a smaller table stays in the CPU cache longer.
    const features = new FeatureTable(byFrequency.length, 0.7);
    for (const id of byFrequency) features.add(keys[2 * id], keys[2 * id + 1]);
    const charIdOf = this.charIdOf.map((id) => (id < 0 ? -1 : renumbered[id]));
    const weights = Float64Array.from(byFrequency, (id) => Math.log((1 + taskCount) / (1 + this.taskFrequency[id])) + 1);
    return { features, charIdOf, weights };
  }

  private charFeature(code: number): number {
    if (this.charIdOf[code] < 0) this.charIdOf[code] = this.features.add(code, CHAR_KEY);
    return this.charIdOf[code];
  }

  private seen(id: number, task: number): void {
    while (this.taskFrequency.length <= id) {
      this.taskFrequency.push(0);
      this.lastTask.push(-1);
    }
    if (this.lastTask[id] === task) return;
    this.lastTask[id] = task;
    this.taskFrequency[id]++;
  }
}
