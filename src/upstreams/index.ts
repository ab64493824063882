import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { TaskRegistry } from '../registry/types.js';
import { UpstreamClient } from './client.js';
import { LlamaCppDriver } from './llamacpp/driver.js';
import { LoraxDriver } from './lorax/driver.js';
import type { DriverContext, UpstreamDriver, UpstreamKind } from './types.js';
import { MergeManager, type AdapterLoadingApi } from './merge/merge-manager.js';
import { SGLANG_ADAPTER_LOADING, SglangDriver } from './sglang/driver.js';
import { VLLM_ADAPTER_LOADING, VllmDriver } from './vllm/driver.js';

export interface Upstream {
  kind: UpstreamKind;
  client: UpstreamClient;
  driver: UpstreamDriver;
  close(): Promise<void>;
}

interface KindFactoryInput {
  client: UpstreamClient;
  context: DriverContext;
  settings: Config['upstream'];
  registry: TaskRegistry;
  metrics: GatewayMetrics;
  logger: Logger;
}

function mergingDriver(kind: 'vllm' | 'sglang', { client, context, settings, registry, metrics, logger }: KindFactoryInput): UpstreamDriver {
  const api: AdapterLoadingApi = kind === 'sglang' ? SGLANG_ADAPTER_LOADING : VLLM_ADAPTER_LOADING;
  const mode = settings.vllmMode ?? (settings.mergeDir ? 'merge' : 'top1');
  const merges =
    mode === 'merge' && settings.mergeDir
      ? new MergeManager(
          client,
          api,
          registry.adapters,
          {
            mergeDir: settings.mergeDir,
            maxRank: settings.maxLoraRank,
            maxLoaded: settings.maxLoadedMerges,
            maxNewPerMinute: settings.maxNewMergesPerMinute,
            unloadOnClose: settings.unloadMergesOnShutdown,
          },
          metrics,
          logger,
        )
      : undefined;
  const merging = { mode, mergeWeightStep: settings.mergeWeightStep, mergeMinWeight: settings.mergeMinWeight };
  return kind === 'sglang' ? new SglangDriver(context, merging, merges, metrics, logger) : new VllmDriver(context, merging, merges, metrics, logger);
}

/** Every upstream kind, by the name LORAUTER_UPSTREAM takes: how its driver is built. */
export const UPSTREAM_KINDS: Record<UpstreamKind, (input: KindFactoryInput) => UpstreamDriver> = {
  vllm: (input) => mergingDriver('vllm', input),
  sglang: (input) => mergingDriver('sglang', input),
  llamacpp: ({ client, context, settings, logger }) => new LlamaCppDriver(client, context, logger, settings.llamacppCachePrompt),
  lorax: ({ context }) => new LoraxDriver(context),
};

/** The configured upstream (URL + kind), or undefined when the gateway only routes. */
export function createUpstream(config: Config, registry: TaskRegistry, metrics: GatewayMetrics, logger: Logger): Upstream | undefined {
  const settings = config.upstream;
  if (!settings.url) return undefined;
  const kind = settings.kind ?? 'vllm';
  const client = new UpstreamClient({
    url: settings.url,
    connectTimeoutMs: settings.connectTimeoutMs,
    headersTimeoutMs: settings.headersTimeoutMs,
    bodyTimeoutMs: settings.bodyTimeoutMs,
  });
  const context = { adapters: registry.adapters, baseModel: settings.baseModel };
  const driver = UPSTREAM_KINDS[kind]({ client, context, settings, registry, metrics, logger: logger.child({ component: `upstream-${kind}` }) });
  return {
    kind,
    client,
    driver,
    async close() {
      await driver.close?.();
      await client.close();
    },
  };
}
