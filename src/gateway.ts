import type { Logger } from 'pino';
import { CachingEncoder } from './cache/caching-encoder.js';
import { RedisEmbeddingStore } from './cache/redis-store.js';
import type { Config } from './config/schema.js';
import type { Encoder } from './encoders/encoder.js';
import { prepareEncoder } from './encoders/kinds.js';
import { GatewayMetrics } from './observability/metrics.js';
import { exampleGroups, withDefaultBaseExamples } from './registry/base-examples.js';
import { loadRegistry } from './registry/load.js';
import type { TaskRegistry } from './registry/types.js';
import { Router } from './router/router.js';
import { createUpstream, type Upstream } from './upstreams/index.js';

/** Everything the HTTP layer needs, built once at start-up. */
export interface Gateway {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  registry: TaskRegistry;
  /** The configured encoder behind the embedding caches. */
  encoder: CachingEncoder;
  router: Router;
  redis?: RedisEmbeddingStore;
  upstream?: Upstream;
  /** False once shutdown has begun, so that /readyz takes the instance out of rotation. */
  accepting: boolean;
  /** Upstream exchanges in flight; aborted with a ShutdownAbort when the shutdown grace runs out. */
  inflight: Set<AbortController>;
  close(): Promise<void>;
}

export interface GatewayParts {
  registry?: TaskRegistry;
  encoder?: Encoder;
  metrics?: GatewayMetrics;
}

export async function createGateway(config: Config, logger: Logger, parts: GatewayParts = {}): Promise<Gateway> {
  const started = performance.now();
  const metrics = parts.metrics ?? new GatewayMetrics({ defaultMetrics: true });
  const registry = withDefaultBaseExamples(parts.registry ?? loadRegistry(config.tasks), config.defaultBaseExamples);
  // The upstream first: a bad kind or setting stops start-up before anything is loaded or connected.
  const upstream = createUpstream(config, registry, metrics, logger);
  const prepared = parts.encoder ? undefined : await prepareEncoder(config.encoder);
  const encoderFor = (tasks: readonly { examples: readonly string[] }[]) => prepared!.forTasks(exampleGroups(tasks, registry.baseExamples));
  const baseEncoder = parts.encoder ?? encoderFor(registry.tasks);
  const redis = config.cache.redisUrl
    ? new RedisEmbeddingStore(
        {
          url: config.cache.redisUrl,
          ttlSeconds: config.cache.ttlSeconds,
          timeoutMs: config.cache.redisTimeoutMs,
          keyPrefix: config.cache.keyPrefix,
        },
        logger.child({ component: 'redis-cache' }),
        metrics,
      )
    : undefined;
  // Task examples are looked up in Redis too (other replicas may have encoded them): connect first.
  await redis?.waitUntilReady(Math.max(config.cache.redisTimeoutMs, 1000));
  const encoder = new CachingEncoder(baseEncoder, { maxEntries: config.cache.maxEntries, metrics, redis });
  const router = await Router.build(registry, encoder, {
    topK: config.topK,
    temperature: config.temperature,
    minConfidence: config.minConfidence,
    baseMargin: config.baseMargin,
    maxRoutedChars: config.maxRoutedChars,
    decisionCacheSize: config.cache.decisionEntries,
  }, prepared ? encoderFor : () => baseEncoder);
  metrics.tasks.set(router.taskCount);
  logger.info(
    {
      tasks: router.taskCount,
      source: registry.source,
      encoder: encoder.fingerprint,
      dimensions: encoder.dimensions,
      redis: redis ? 'enabled' : 'disabled',
      upstream: upstream ? `${upstream.kind} ${withoutCredentials(config.upstream.url!)}` : 'none',
      startupMs: Math.round(performance.now() - started),
    },
    'routing index ready',
  );
  const gateway: Gateway = {
    config,
    logger,
    metrics,
    registry,
    encoder,
    router,
    redis,
    upstream,
    accepting: true,
    inflight: new Set(),
    async close() {
      gateway.accepting = false;
      await Promise.all([redis?.close(), upstream?.close(), prepared?.close()]);
    },
  };
  return gateway;
}

/** A URL fit for logs: user name and password replaced. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '***';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(invalid URL)';
  }
}
