import { assertVllmLoadable } from '../vllm/loadable.js';
import type { AdapterLoadingApi } from '../merge/merged-adapters.js';
import { MergingDriver } from '../merge/merging-driver.js';

/**
 * SGLang's runtime LoRA API (POST /load_lora_adapter, /unload_lora_adapter): JSON with `success`
 * and `error_message`.
 */
export const SGLANG_ADAPTER_LOADING: AdapterLoadingApi = {
  kind: 'sglang',
  loadPath: '/load_lora_adapter',
  unloadPath: '/unload_lora_adapter',
  loaded: (status, text) => succeeded(status, text) || /already (been )?loaded|already exists/i.test(text),
  unloaded: succeeded,
  // SGLang's LoRA layers take the same adapters as vLLM's merged ones: no DoRA, no whole saved modules, no embeddings.
  assertLoadable: assertVllmLoadable,
  // LoadLoRAAdapterReqInput.pinned: a pinned adapter is never evicted from the GPU pool.
  pins: true,
};

function succeeded(status: number, text: string): boolean {
  if (status !== 200) return false;
  try {
    return (JSON.parse(text) as { success?: boolean }).success !== false;
  } catch {
    return true;
  }
}

/** SGLang's OpenAI server: `model` is "base-model:adapter-name"; the base model alone is its own name. */
export class SglangDriver extends MergingDriver {
  readonly kind = 'sglang';

  protected modelFor(adapterName: string): string {
    return `${this.context.baseModel}:${adapterName}`;
  }

  protected baseBody(body: Record<string, unknown>): Record<string, unknown> {
    return { ...body, model: this.context.baseModel };
  }
}
