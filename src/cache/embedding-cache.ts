import { LRUCache } from 'lru-cache';
import type { Encoder } from '../encoders/encoder.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { embeddingKey } from './keys.js';
import type { RedisEmbeddingStore } from './redis-store.js';

export type EmbeddingSource = 'memory' | 'redis' | 'encoder';

export interface EmbeddedTexts {
  vectors: Float32Array[];
  sources: EmbeddingSource[];
}

/** Encodes texts through an in-process LRU and, when configured, Redis; misses go to the encoder. */
export class EmbeddingCache {
  private readonly memory: LRUCache<string, Float32Array> | undefined;

  constructor(
    maxEntries: number,
    private readonly metrics: GatewayMetrics,
    private readonly redis?: RedisEmbeddingStore,
  ) {
    this.memory = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
  }

  async embed(encoder: Encoder, texts: readonly string[]): Promise<EmbeddedTexts> {
    const keys = texts.map((text) => embeddingKey(encoder.fingerprint, text));
    const vectors: (Float32Array | undefined)[] = keys.map((key) => this.memory?.get(key));
    const sources: EmbeddingSource[] = vectors.map((vector) => (vector ? 'memory' : 'encoder'));

    let missing = indicesOfMissing(vectors);
    if (this.redis && missing.length > 0) {
      const found = await this.redis.getMany(missing.map((i) => keys[i]), encoder.dimensions);
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
      const unique = [...new Set(missing.map((i) => texts[i]))];
      const encoded = await encoder.encode(unique);
      const byText = new Map(unique.map((text, j) => [text, encoded[j]]));
      for (const i of missing) vectors[i] = byText.get(texts[i]);
      const fresh = unique.map((text, j) => [embeddingKey(encoder.fingerprint, text), encoded[j]] as [string, Float32Array]);
      for (const [key, vector] of fresh) this.memory?.set(key, vector);
      this.redis?.setMany(fresh);
    }
    for (const source of sources) this.metrics.embeddingLookups.inc({ source });
    return { vectors: vectors as Float32Array[], sources };
  }
}

function indicesOfMissing(vectors: readonly (Float32Array | undefined)[]): number[] {
  const missing: number[] = [];
  vectors.forEach((vector, i) => {
    if (!vector) missing.push(i);
  });
  return missing;
}
