import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection that fails fast rather than queueing: every command bounded by
 * `commandTimeoutMs`, none queued while disconnected or retried, reconnects with a capped backoff.
 * Shared by the embedding cache, the registry store and the rate limiter.
 */
export function boundedRedis(url: string, commandTimeoutMs: number, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    ...overrides,
  });
}

/** Resolves true once the connection is ready, false after `timeoutMs`. */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    const onReady = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    client.once('ready', onReady);
  });
}
