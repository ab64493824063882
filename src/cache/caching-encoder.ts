import { LRUCache } from 'lru-cache';
import type { EncodePurpose, Encoder, EncoderModel } from '../encoders/encoder.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { embeddingKey } from './keys.js';
import type { RedisEmbeddingStore } from './redis-store.js';

export type EmbeddingSource = 'memory' | 'redis' | 'encoder';

export interface EmbeddedTexts {
  vectors: Float32Array[];
  sources: EmbeddingSource[];
}

export interface CachingEncoderOptions {
  /** Entries in the in-process LRU (0: none). */
  maxEntries: number;
  metrics?: GatewayMetrics;
  redis?: RedisEmbeddingStore;
}

/**
 * An Encoder that looks texts up in an in-process LRU and, when configured, Redis before asking
 * the encoder it wraps; keys hold the encoder's fingerprint, so another model or fit never reads
 * these vectors. Repeated texts in one call are encoded once.
 */
export class CachingEncoder implements Encoder {
  readonly kind: string;
  readonly fingerprint: string;
  readonly dimensions: number;
  readonly model?: EncoderModel;
  private readonly memory: LRUCache<string, Float32Array> | undefined;

  constructor(
    readonly inner: Encoder,
    private readonly options: CachingEncoderOptions,
  ) {
    this.kind = inner.kind;
    this.fingerprint = inner.fingerprint;
    this.dimensions = inner.dimensions;
    this.model = inner.model;
    this.memory = options.maxEntries > 0 ? new LRUCache({ max: options.maxEntries }) : undefined;
  }

  async encode(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<Float32Array[]> {
    return (await this.embed(texts, purpose)).vectors;
  }

  /** Like encode, and says where each vector came from. */
  async embed(texts: readonly string[], purpose: EncodePurpose = 'query'): Promise<EmbeddedTexts> {
    const { redis, metrics } = this.options;
    const keys = texts.map((text) => this.keyOf(text, purpose));
    const vectors: (Float32Array | undefined)[] = keys.map((key) => this.memory?.get(key));
    const sources: EmbeddingSource[] = vectors.map((vector) => (vector ? 'memory' : 'encoder'));

    let missing = indicesOfMissing(vectors);
    if (redis && missing.length > 0) {
      const found = await redis.getMany(missing.map((i) => keys[i]), this.dimensions);
      found.forEach((vector, j) => {
        if (!vector) return;
        const i = missing[j];
        vectors[i] = vector;
        sources[i] = 'redis';
        this.memory?.set(keys[i], vector);
      });
      missing = indicesOfMissing(vectors);
    }
    if (missing.length > 0) {
      const keyByText = new Map(missing.map((i) => [texts[i], keys[i]]));
      const unique = [...keyByText.keys()];
      const encoded = await this.inner.encode(unique, purpose);
      const byText = new Map(unique.map((text, j) => [text, encoded[j]]));
      for (const i of missing) vectors[i] = byText.get(texts[i]);
      const fresh = unique.map((text, j) => [keyByText.get(text)!, encoded[j]] as [string, Float32Array]);
      for (const [key, vector] of fresh) this.memory?.set(key, vector);
      redis?.setMany(fresh);
    }
    if (metrics && purpose === 'query') for (const source of sources) metrics.embeddingLookups.inc({ source });
    return { vectors: vectors as Float32Array[], sources };
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  private keyOf(text: string, purpose: EncodePurpose): string {
    return embeddingKey(purpose === 'query' ? this.fingerprint : `${this.fingerprint}:example`, text);
  }
}

function indicesOfMissing(vectors: readonly (Float32Array | undefined)[]): number[] {
  const missing: number[] = [];
  vectors.forEach((vector, i) => {
    if (!vector) missing.push(i);
  });
  return missing;
}
