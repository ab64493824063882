import { Type } from 'typebox';
import type { KindEnvironment } from '../../config/kind-settings.js';

/** Settings of the kinds that merge mixtures into one adapter (vLLM, SGLang), under `upstream`. */
export const MergeSettings = {
  vllmMode: Type.Optional(Type.Union([Type.Literal('top1'), Type.Literal('merge')], { description: 'vLLM and SGLang: one adapter, or the exact mixture merged' })),
  maxLoraRank: Type.Integer({ minimum: 1, default: 64 }),
  mergeDir: Type.Optional(Type.String({ minLength: 1 })),
  mergeWeightStep: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.05 }),
  maxLoadedMerges: Type.Integer({ minimum: 1, default: 8 }),
  mergeMinWeight: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'adapters lighter than this leave the mixture before merging' }),
  maxNewMergesPerMinute: Type.Integer({ minimum: 1, default: 30, description: 'beyond this, new mixtures fall back to the top adapter' }),
  unloadMergesOnShutdown: Type.Boolean({ default: false, description: "unload the gateway's merged adapters when it stops" }),
};

export const MERGE_ENVIRONMENT: KindEnvironment = {
  LORAUTER_VLLM_MODE: ['vllmMode', 'text'],
  LORAUTER_MAX_LORA_RANK: ['maxLoraRank', 'integer'],
  LORAUTER_MERGE_DIR: ['mergeDir', 'text'],
  LORAUTER_MERGE_WEIGHT_STEP: ['mergeWeightStep', 'number'],
  LORAUTER_MAX_LOADED_MERGES: ['maxLoadedMerges', 'integer'],
  LORAUTER_MERGE_MIN_WEIGHT: ['mergeMinWeight', 'number'],
  LORAUTER_MAX_NEW_MERGES_PER_MINUTE: ['maxNewMergesPerMinute', 'integer'],
  LORAUTER_UNLOAD_MERGES_ON_SHUTDOWN: ['unloadMergesOnShutdown', 'toggle'],
};
