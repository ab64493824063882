import type { Logger } from 'pino';
import { CachingEncoder } from './cache/caching-encoder.js';
import { RedisEmbeddingStore } from './cache/redis-store.js';
import type { Config } from './config/schema.js';
import type { Encoder } from './encoders/encoder.js';
import { prepareEncoder } from './encoders/kinds.js';
import { hubLog } from './encoders/hub/progress-log.js';
import { GatewayMetrics } from './observability/metrics.js';
import { exampleGroups, withDefaultBaseExamples } from './registry/base-examples.js';
import { demoRegistry } from './registry/demo.js';
import { LiveRegistry } from './registry/live-registry.js';
import { RegistryFile } from './registry/registry-file.js';
import { MemoryRegistryStore } from './registry/stores/memory-store.js';
import { RedisRegistryStore } from './registry/stores/redis-store.js';
import type { TaskRegistry } from './registry/types.js';
import { LiveRouter } from './router/live-router.js';
import { Router } from './router/router.js';
import { createUpstream, type Upstream } from './upstreams/index.js';
import type { UpstreamDriver } from './upstreams/types.js';
import { InflightExchanges } from './upstreams/exchange-abort.js';
import { expectedMixtures } from './composition/warm-start.js';

/** Everything the HTTP layer needs, built once at start-up. */
export interface Gateway {
  config: Config;
  logger: Logger;
  metrics: GatewayMetrics;
  /** The registry in service (changes with the admin API, file reloads and other replicas). */
  readonly registry: TaskRegistry;
  liveRegistry: LiveRegistry;
  /** The configured encoder behind the embedding caches, as fitted for the registry in service. */
  readonly encoder: CachingEncoder;
  /** The router in service; swapped whole after a registry change. */
  readonly router: Router;
  liveRouter: LiveRouter;
  redis?: RedisEmbeddingStore;
  upstream?: Upstream;
  /** False once shutdown has begun, so that /readyz takes the instance out of rotation. */
  accepting: boolean;
  /** Upstream exchanges in flight; aborted with a ShutdownAbort when the shutdown grace runs out. */
  inflight: InflightExchanges;
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
  const file = config.tasks && !parts.registry ? new RegistryFile(config.tasks) : undefined;
  const initial = parts.registry ?? file?.read() ?? demoRegistry();
  const store = config.cache.redisUrl
    ? new RedisRegistryStore({ url: config.cache.redisUrl, ...config.registry }, logger.child({ component: 'registry' }))
    : new MemoryRegistryStore();
  const liveRegistry = await LiveRegistry.open({
    store,
    initial,
    file,
    fileCheckMs: config.registry.fileCheckMs,
    logger: logger.child({ component: 'registry' }),
    onReload: (result) => metrics.registryReloads.inc({ result }),
  });
  // The upstream before the encoder: a bad kind or setting stops start-up before a model is loaded.
  let upstream: Upstream | undefined;
  try {
    upstream = createUpstream(config, liveRegistry.adapters, metrics, logger);
  } catch (error) {
    await liveRegistry.close();
    throw error;
  }
  const encoderLogger = logger.child({ component: 'encoder' });
  const prepared = parts.encoder
    ? undefined
    : await prepareEncoder(config.encoder, {
        problem: (message, error) => {
          metrics.encoderThreadFailures.inc();
          encoderLogger.warn({ err: error }, message);
        },
        encoded: (thread, count) => metrics.encodedPrompts.inc({ thread }, count),
        hub: hubLog(encoderLogger),
      });
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
  const cached = (encoder: Encoder) => new CachingEncoder(encoder, { maxEntries: config.cache.maxEntries, metrics, redis });
  // A neural encoder does not depend on the registry: one cache serves every rebuild, so a change
  // encodes only new examples. The built-in encoder is fitted on the registry: a change refits it.
  const fixedEncoder = parts.encoder ? cached(parts.encoder) : prepared!.fitted ? undefined : cached(prepared!.forTasks([]));
  const buildRouter = async (stored: TaskRegistry, previous?: Router): Promise<Router> => {
    const registry = withDefaultBaseExamples(stored, config.defaultBaseExamples);
    const encoderFor = (tasks: readonly { examples: readonly string[] }[]) =>
      fixedEncoder ?? prepared!.forTasks(exampleGroups(tasks, registry.baseExamples));
    const groups = exampleGroups(registry.tasks, registry.baseExamples);
    const serving = fixedEncoder ?? cached(prepared!.forServing?.(groups) ?? prepared!.forTasks(groups));
    try {
      return await Router.build(registry, serving, {
        topK: config.topK,
        temperature: config.temperature,
        minConfidence: config.minConfidence,
        baseMargin: config.baseMargin,
        maxRoutedChars: config.maxRoutedChars,
        decisionCacheSize: config.cache.decisionEntries,
      }, encoderFor, previous);
    } catch (error) {
      if (serving !== fixedEncoder) await serving.close();
      throw error;
    }
  };
  const warmStartLogger = logger.child({ component: 'warm-start' });
  const buildAndWarm = async (stored: TaskRegistry, previous?: Router): Promise<Router> => {
    const router = await buildRouter(stored, previous);
    if (upstream?.driver.warmStart && config.upstream.mergeWarmStart) {
      warmStart(router, upstream.driver, config).catch((error) => warmStartLogger.warn({ err: (error as Error).message }, 'warm start failed'));
    }
    return router;
  };
  const liveRouter = new LiveRouter(await buildAndWarm(liveRegistry.registry), liveRegistry.version, buildAndWarm, metrics, logger.child({ component: 'router' }));
  liveRegistry.onChange((snapshot) => liveRouter.update(snapshot));
  // A change that arrived while the first router was being built.
  liveRouter.update({ registry: liveRegistry.registry, version: liveRegistry.version });
  metrics.tasks.set(liveRouter.current.taskCount);
  logger.info(
    {
      tasks: liveRouter.current.taskCount,
      source: liveRegistry.registry.source,
      registry: liveRegistry.storeKind,
      encoder: liveRouter.current.encoder.fingerprint,
      dimensions: liveRouter.current.encoder.dimensions,
      ...(liveRouter.current.encoder.model ? { encoder_model: liveRouter.current.encoder.model } : {}),
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
    get registry() {
      return liveRegistry.registry;
    },
    liveRegistry,
    get encoder() {
      return liveRouter.current.encoder;
    },
    get router() {
      return liveRouter.current;
    },
    liveRouter,
    redis,
    upstream,
    accepting: true,
    inflight: new InflightExchanges(),
    async close() {
      gateway.accepting = false;
      await liveRegistry.close();
      await liveRouter.close();
      // The serving encoder of a fitted kind belongs to the router (a neural one is closed with `prepared`).
      if (liveRouter.current.encoder !== fixedEncoder) await liveRouter.current.encoder.close();
      await Promise.all([redis?.close(), upstream?.close(), prepared?.close()]);
    },
  };
  return gateway;
}

// Examples routed for a warm start at most: a registry of 100k tasks gets the typical mixtures of its first few hundred.
const WARM_START_EXAMPLES = 4096;
const WARM_START_EXAMPLES_A_TASK = 8;

/** Routes each task's first examples and hands the mixtures they ask for to the upstream kind that builds ahead. */
async function warmStart(router: Router, driver: UpstreamDriver, config: Config): Promise<void> {
  const examples: string[] = [];
  for (const task of router.registry.tasks) {
    if (examples.length >= WARM_START_EXAMPLES) break;
    examples.push(...task.examples.slice(0, WARM_START_EXAMPLES_A_TASK));
  }
  const decisions = await router.routeMany(examples);
  const { mergeWeightStep: step, mergeMinWeight: minWeight } = config.upstream;
  driver.warmStart!(expectedMixtures(decisions.map((decision) => decision.adapters), { step, minWeight }));
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
