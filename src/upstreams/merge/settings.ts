import { Type } from 'typebox';

/** Settings of the kinds that merge mixtures into one adapter (vLLM, SGLang), under `upstream`. */
export const MergeSettings = {
  vllmMode: Type.Optional(Type.Union([Type.Literal('top1'), Type.Literal('merge')], { env: 'LORAUTER_VLLM_MODE', description: 'vLLM and SGLang: one adapter, or the mixture served through merged adapters' })),
  vllmLoading: Type.Union([Type.Literal('api'), Type.Literal('resolver')], {
    env: 'LORAUTER_VLLM_LOADING',
    default: 'api',
    description: "vLLM: load merges with /v1/load_lora_adapter, or write them into the filesystem resolver's folder (LORAUTER_MERGE_DIR = VLLM_LORA_RESOLVER_CACHE_DIR) and name them in model",
  }),
  maxLoraRank: Type.Integer({ env: 'LORAUTER_MAX_LORA_RANK', minimum: 1, default: 64, description: "the server's --max-lora-rank: a merge's rank (Σ r) stays within it" }),
  mergeDir: Type.Optional(Type.String({ env: 'LORAUTER_MERGE_DIR', minLength: 1, description: 'where merged adapters are written (the server must read the same path); one gateway a folder' })),
  mergeWeightStep: Type.Number({ env: 'LORAUTER_MERGE_WEIGHT_STEP', exclusiveMinimum: 0, maximum: 1, default: 0.05, description: 'merged weights are rounded to this grid' }),
  mergeMinWeight: Type.Number({ env: 'LORAUTER_MERGE_MIN_WEIGHT', minimum: 0, maximum: 1, default: 0.05, description: 'adapters lighter than this leave the mixture before merging' }),
  maxLoadedMerges: Type.Integer({ env: 'LORAUTER_MAX_LOADED_MERGES', minimum: 1, maximum: 4096, default: 128, description: 'merged adapters live (loaded) and building at most' }),
  mergeDirMaxBytes: Type.Integer({ env: 'LORAUTER_MERGE_DIR_MAX_BYTES', minimum: 1, default: 24 * 2 ** 30, description: 'bytes of merged adapters in the merge folder at most' }),
  mergeBuildsAtOnce: Type.Integer({ env: 'LORAUTER_MERGE_BUILDS_AT_ONCE', minimum: 1, maximum: 16, default: 1, description: 'merges built at the same time, each on a thread of its own' }),
  maxNewMergesPerMinute: Type.Integer({ env: 'LORAUTER_MAX_NEW_MERGES_PER_MINUTE', minimum: 1, default: 60, description: 'merges built in any 60 s at most' }),
  mergeWaitMs: Type.Integer({ env: 'LORAUTER_MERGE_WAIT_MS', minimum: 0, maximum: 600000, default: 0, description: 'how long a request may wait for its exact merge to be built (0: never; it is served the best live composition)' }),
  mergeWarmStart: Type.Boolean({ env: 'LORAUTER_MERGE_WARM_START', default: true, description: "at start-up and after registry changes, build in the background the mixtures the tasks' examples ask for" }),
  sglangMaxLorasPerBatch: Type.Integer({ env: 'LORAUTER_SGLANG_MAX_LORAS_PER_BATCH', minimum: 1, default: 8, description: "SGLang's --max-loras-per-batch" }),
  sglangPinnedMerges: Type.Integer({ env: 'LORAUTER_SGLANG_PINNED_MERGES', minimum: 0, default: 0, description: 'SGLang: warm-start merges loaded pinned, at most --max-loras-per-batch − 1' }),
  unloadMergesOnShutdown: Type.Boolean({ env: 'LORAUTER_UNLOAD_MERGES_ON_SHUTDOWN', default: false, description: "unload the gateway's merged adapters when it stops" }),
};

