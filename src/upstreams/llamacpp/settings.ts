import { Type } from 'typebox';

/** llama.cpp server settings, under `upstream`. */
export const LlamaCppSettings = {
  llamacppCachePrompt: Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Literal('auto')], {
    env: 'LORAUTER_LLAMACPP_CACHE_PROMPT',
    default: 'auto',
    description: 'prompt cache with per-request LoRA; auto turns it off when the adapter set changes (ggml-org/llama.cpp#26207)',
  }),
  llamacppWeightStep: Type.Number({
    env: 'LORAUTER_LLAMACPP_WEIGHT_STEP',
    minimum: 0,
    maximum: 1,
    default: 0,
    description: 'round per-request LoRA scales to this grid so that concurrent requests share a configuration and batch (0: exact scales)',
  }),
};

