import type { LoraAdapter } from '../../lora/adapter.js';
import { MergeRefusedError } from '../../lora/merge.js';

/** What the check reads: the config and the module paths (a header is enough, no tensor data). */
export type LoadableAdapter = Pick<LoraAdapter, 'config'> & { modules: ReadonlyMap<string, unknown> };

const EMBEDDING_MODULE = /(^|\.)(lm_head|embed_tokens|wte|word_embeddings)(\.|$)/;

/**
 * Throws when vLLM could not load a merge of this adapter: DoRA (magnitude vectors), full copies of
 * modules (`modules_to_save`), or LoRA on the embeddings or the LM head, which vLLM's LoRA layers do
 * not take in a merged adapter.
 */
export function assertVllmLoadable(id: string, adapter: LoadableAdapter): void {
  const config = adapter.config;
  if (config.use_dora) throw new MergeRefusedError('dora', `adapter ${id} is DoRA, which vLLM does not serve`);
  const saved = config.modules_to_save;
  if (Array.isArray(saved) ? saved.length > 0 : Boolean(saved)) throw new MergeRefusedError('modules_to_save', `adapter ${id} saves whole modules (modules_to_save), which vLLM does not load`);
  const embedding = [...adapter.modules.keys()].find((module) => EMBEDDING_MODULE.test(module));
  if (embedding) throw new MergeRefusedError('embedding_layers', `adapter ${id} has LoRA weights on ${embedding}`);
}
