import type { Redis } from 'ioredis';
import { boundedRedis, whenReady } from '../redis.js';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observability/metrics.js';
import { bufferToFloat32, float32ToBuffer } from './keys.js';

export interface RedisStoreOptions {
  url: string;
  ttlSeconds: number;
  timeoutMs: number;
  keyPrefix: string;
}

/**
 * Embedding vectors in Redis as raw little-endian Float32 bytes with a TTL. Every call is bounded by
 * `timeoutMs` and never throws: a failure counts as a miss. An outage is logged once when it
 * starts and once when it ends; ioredis reconnects by itself meanwhile.
 */
export class RedisEmbeddingStore {
  private readonly client: Redis;
  private healthy = true;

  constructor(
    private readonly options: RedisStoreOptions,
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    this.client = boundedRedis(options.url, options.timeoutMs, { reconnectOnError: () => true });
    this.client.on('ready', () => this.markHealthy());
    this.client.on('error', (error) => this.markUnhealthy('connection', error));
    this.client.on('close', () => this.markUnhealthy('connection', new Error('connection closed')));
    this.metrics.registry.registerMetric(this.metrics.redisUp);
    this.metrics.redisUp.set(0);
  }

  get isHealthy(): boolean {
    return this.healthy && this.client.status === 'ready';
  }

  /** Resolves once connected, or after `timeoutMs` (then lookups miss until ioredis reconnects). */
  waitUntilReady(timeoutMs: number): Promise<boolean> {
    return whenReady(this.client, timeoutMs);
  }

  async getMany(keys: readonly string[], dimensions: number): Promise<(Float32Array | undefined)[]> {
    if (keys.length === 0) return [];
    if (this.client.status !== 'ready') {
      this.markUnhealthy('get', new Error(`connection is ${this.client.status}`));
      return keys.map(() => undefined);
    }
    try {
      const values = await this.client.mgetBuffer(...keys.map((key) => this.options.keyPrefix + key));
      if (!this.healthy) this.markHealthy();
      return values.map((value) => (value ? bufferToFloat32(value, dimensions) : undefined));
    } catch (error) {
      this.markUnhealthy('get', error as Error);
      return keys.map(() => undefined);
    }
  }

  setMany(entries: readonly [string, Float32Array][]): void {
    if (entries.length === 0 || this.client.status !== 'ready') return;
    const pipeline = this.client.pipeline();
    for (const [key, vector] of entries) pipeline.set(this.options.keyPrefix + key, float32ToBuffer(vector), 'EX', this.options.ttlSeconds);
    pipeline.exec().catch((error: Error) => this.markUnhealthy('set', error));
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.client.removeAllListeners('error');
    this.client.removeAllListeners('close');
    this.client.on('error', () => {});
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private markHealthy(): void {
    this.metrics.redisUp.set(1);
    if (!this.healthy) this.logger.info('redis embedding cache is reachable again');
    this.healthy = true;
  }

  private markUnhealthy(operation: string, error: Error): void {
    this.metrics.cacheErrors.inc({ operation });
    if (operation === 'connection' || this.client.status !== 'ready') this.metrics.redisUp.set(0);
    if (this.healthy) {
      this.logger.warn({ err: error.message, operation }, 'redis embedding cache unavailable; routing continues from the encoder');
      this.healthy = false;
    }
  }
}
