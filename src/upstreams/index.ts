import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { AdapterDefinition } from '../registry/types.js';
import { UpstreamClient } from './client.js';
import { LlamaCppDriver } from './llamacpp/driver.js';
import { LoraxDriver } from './lorax/driver.js';
import { ConfigError } from '../config/load.js';
import { UpstreamHealth } from './health.js';
import { UpstreamLimiter } from './limiter.js';
import type { DriverContext, UpstreamDriver } from './types.js';
import { MergedAdapters, type AdapterLoadingApi } from './merge/merged-adapters.js';
import { SGLANG_ADAPTER_LOADING, SglangDriver } from './sglang/driver.js';
import { VLLM_ADAPTER_LOADING, VllmDriver } from './vllm/driver.js';

export interface Upstream {
  kind: string;
  client: UpstreamClient;
  driver: UpstreamDriver;
  health: UpstreamHealth;
  limiter: UpstreamLimiter;
  close(): Promise<void>;
}

interface KindFactoryInput {
  client: UpstreamClient;
  context: DriverContext;
  settings: Config['upstream'];
  metrics: GatewayMetrics;
  logger: Logger;
}

/** vLLM's --max-lora-rank choices; a merged adapter must fit the value the server was started with. */
export const VLLM_MAX_LORA_RANKS = [8, 16, 32, 64, 128, 256, 320, 512];

function checkVllmRank(input: KindFactoryInput): KindFactoryInput {
  const rank = input.settings.maxLoraRank;
  if (VLLM_MAX_LORA_RANKS.includes(rank)) return input;
  throw new ConfigError(
    `invalid configuration: upstream.maxLoraRank (LORAUTER_MAX_LORA_RANK) is ${rank}; vLLM accepts only --max-lora-rank ${VLLM_MAX_LORA_RANKS.join(', ')}: set it to the value vLLM was started with`,
  );
}

function mergingDriver(kind: 'vllm' | 'sglang', { client, context, settings, metrics, logger }: KindFactoryInput): UpstreamDriver {
  const api: AdapterLoadingApi = kind === 'sglang' ? SGLANG_ADAPTER_LOADING : VLLM_ADAPTER_LOADING;
  const mode = settings.vllmMode ?? (settings.mergeDir ? 'merge' : 'top1');
  if (mode === 'merge' && !settings.mergeDir) throw new ConfigError('invalid configuration: LORAUTER_VLLM_MODE=merge needs LORAUTER_MERGE_DIR, a folder the server reads too');
  if (kind === 'vllm' && settings.vllmLoading === 'resolver' && !settings.baseModel) {
    throw new ConfigError("invalid configuration: LORAUTER_VLLM_LOADING=resolver needs LORAUTER_BASE_MODEL: vLLM's resolver loads only adapters whose base_model_name_or_path is the served model");
  }
  if (kind === 'sglang' && settings.sglangPinnedMerges > settings.sglangMaxLorasPerBatch - 1) {
    throw new ConfigError(
      `invalid configuration: LORAUTER_SGLANG_PINNED_MERGES is ${settings.sglangPinnedMerges}; at most LORAUTER_SGLANG_MAX_LORAS_PER_BATCH − 1 = ${settings.sglangMaxLorasPerBatch - 1}, so that one slot of a batch stays free for every other adapter`,
    );
  }
  const merges =
    mode === 'merge' && settings.mergeDir
      ? new MergedAdapters(
          client,
          api,
          context.adapters,
          {
            mergeDir: settings.mergeDir,
            maxRank: settings.maxLoraRank,
            maxLive: settings.maxLoadedMerges,
            maxBytes: settings.mergeDirMaxBytes,
            buildsAtOnce: settings.mergeBuildsAtOnce,
            maxNewPerMinute: settings.maxNewMergesPerMinute,
            weightStep: settings.mergeWeightStep,
            minWeight: settings.mergeMinWeight,
            loading: kind === 'vllm' ? settings.vllmLoading : 'api',
            baseModel: settings.baseModel,
            pinnedMerges: kind === 'sglang' ? settings.sglangPinnedMerges : 0,
            callTimeoutMs: settings.headersTimeoutMs,
            unloadOnClose: settings.unloadMergesOnShutdown,
          },
          metrics,
          logger,
        )
      : undefined;
  const merging = { waitMs: settings.mergeWaitMs };
  return kind === 'sglang' ? new SglangDriver(context, merging, merges, logger) : new VllmDriver(context, merging, merges, logger);
}

/**
 * Every upstream kind, by the name LORAUTER_UPSTREAM takes: how its driver is built, and the rules
 * that tie the kind to other settings. Adding a kind is a folder and a line here.
 */
export const UPSTREAM_KINDS: Record<string, (input: KindFactoryInput) => UpstreamDriver> = {
  vllm: (input) => mergingDriver('vllm', checkVllmRank(input)),
  sglang: (input) => {
    if (!input.settings.baseModel) throw new ConfigError('invalid configuration: LORAUTER_UPSTREAM=sglang needs LORAUTER_BASE_MODEL, the served model name (SGLang names an adapter as "base-model:adapter")');
    return mergingDriver('sglang', input);
  },
  llamacpp: ({ client, context, settings, logger }) => new LlamaCppDriver(client, context, logger, settings.llamacppCachePrompt, settings.llamacppWeightStep, settings.headersTimeoutMs),
  lorax: ({ context }) => new LoraxDriver(context),
};

/**
 * The configured upstream (URL + kind), or undefined when the gateway only routes. `adapters` is the
 * live registry's map: drivers look adapters up in it at request time, so registry changes reach them.
 */
export function createUpstream(config: Config, adapters: Map<string, AdapterDefinition>, metrics: GatewayMetrics, logger: Logger): Upstream | undefined {
  const settings = config.upstream;
  if (!settings.url) return undefined;
  const kind = settings.kind ?? 'vllm';
  const factory = Object.hasOwn(UPSTREAM_KINDS, kind) ? UPSTREAM_KINDS[kind] : undefined;
  if (!factory) throw new ConfigError(`invalid configuration: upstream.kind (LORAUTER_UPSTREAM): must be one of ${Object.keys(UPSTREAM_KINDS).map((name) => JSON.stringify(name)).join(', ')}`);
  const client = new UpstreamClient({
    url: settings.url,
    connectTimeoutMs: settings.connectTimeoutMs,
    headersTimeoutMs: settings.headersTimeoutMs,
    bodyTimeoutMs: settings.bodyTimeoutMs,
    maxAnswerBytes: settings.maxAnswerBytes,
    // Headroom beyond the limiter for the drivers' own calls (adapter tables, loads) and the health check.
    connections: settings.maxConcurrency + 8,
  });
  const context = { adapters, baseModel: settings.baseModel };
  let driver: UpstreamDriver;
  try {
    driver = factory({ client, context, settings, metrics, logger: logger.child({ component: `upstream-${kind}` }) });
  } catch (error) {
    void client.close();
    throw error;
  }
  const health = new UpstreamHealth(client, driver.healthPath ?? '/health', settings.healthIntervalMs, metrics, logger.child({ component: `upstream-${kind}` }));
  health.start();
  return {
    kind,
    client,
    driver,
    health,
    limiter: new UpstreamLimiter({ maxConcurrency: settings.maxConcurrency, maxQueue: settings.maxQueue, queueTimeoutMs: settings.queueTimeoutMs }),
    async close() {
      health.stop();
      await driver.close?.();
      await client.close();
    },
  };
}
