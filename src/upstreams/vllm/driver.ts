import type { AdapterLoadingApi } from '../merge/merged-adapters.js';
import { MergingDriver } from '../merge/merging-driver.js';
import { assertVllmLoadable } from './loadable.js';

/** vLLM's runtime LoRA API (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): plain-text success. */
export const VLLM_ADAPTER_LOADING: AdapterLoadingApi = {
  kind: 'vllm',
  loadPath: '/v1/load_lora_adapter',
  unloadPath: '/v1/unload_lora_adapter',
  // vLLM answers 400 "... has already been loaded" when a previous gateway process loaded it.
  loaded: (status, text) => status === 200 || (status === 400 && /already been loaded/i.test(text)),
  unloaded: (status) => status === 200,
  assertLoadable: assertVllmLoadable,
};

/** vLLM: `model` is the adapter's name; a request with no model (or the base model's) gets the base model. */
export class VllmDriver extends MergingDriver {
  readonly kind = 'vllm';

  protected modelFor(adapterName: string): string {
    return adapterName;
  }

  protected baseBody(body: Record<string, unknown>): Record<string, unknown> {
    const { model: _model, ...rest } = body;
    return this.context.baseModel ? { ...rest, model: this.context.baseModel } : rest;
  }
}
