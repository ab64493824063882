import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { TaskRegistry } from '../registry/types.js';
import { UpstreamClient } from './client.js';
import { LlamaCppDriver } from './llamacpp/driver.js';
import { LoraxDriver } from './lorax/driver.js';
import type { UpstreamDriver, UpstreamKind } from './types.js';
import { MergeManager, type AdapterLoadingApi } from './merge/merge-manager.js';
import { SGLANG_ADAPTER_LOADING, SglangDriver } from './sglang/driver.js';
import { VLLM_ADAPTER_LOADING, VllmDriver } from './vllm/driver.js';

export interface Upstream {
  kind: UpstreamKind;
  client: UpstreamClient;
  driver: UpstreamDriver;
  close(): Promise<void>;
}

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
  const log = logger.child({ component: `upstream-${kind}` });
  let driver: UpstreamDriver;
  if (kind === 'llamacpp') driver = new LlamaCppDriver(client, context, log, settings.llamacppCachePrompt);
  else if (kind === 'lorax') driver = new LoraxDriver(context);
  else {
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
            log,
          )
        : undefined;
    const merging = { mode, mergeWeightStep: settings.mergeWeightStep, mergeMinWeight: settings.mergeMinWeight };
    driver = kind === 'sglang' ? new SglangDriver(context, merging, merges, metrics, log) : new VllmDriver(context, merging, merges, metrics, log);
  }
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
