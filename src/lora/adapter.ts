import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type Tensor } from './safetensors.js';

/** A PEFT LoRA adapter: per target module, A [r, in] and B [out, r]; ΔW = scaling · B·A. */
export interface LoraAdapter {
  config: Record<string, unknown> & { r: number; lora_alpha: number; target_modules: string[] | string };
  /** Module path (tensor name without `.lora_A.weight` / `.lora_B.weight`) → its A and B. */
  modules: Map<string, { A: Tensor; B: Tensor }>;
}

export class PeftAdapterError extends Error {
  override name = 'PeftAdapterError';
}

const SUFFIX = /\.lora_([AB])(?:\.[^.]+)?\.weight$/;

export function loraScaling(config: LoraAdapter['config']): number {
  return config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
}

export async function readAdapterConfig(directory: string): Promise<LoraAdapter['config']> {
  let config: LoraAdapter['config'];
  try {
    config = JSON.parse(await readFile(join(directory, 'adapter_config.json'), 'utf8'));
  } catch (error) {
    throw new PeftAdapterError(`${directory}: cannot read adapter_config.json (${(error as Error).message})`);
  }
  if (config.peft_type !== undefined && config.peft_type !== 'LORA') throw new PeftAdapterError(`${directory}: peft_type ${String(config.peft_type)} is not LORA`);
  if (!(config.r > 0) || typeof config.lora_alpha !== 'number') throw new PeftAdapterError(`${directory}: adapter_config.json needs r and lora_alpha`);
  return config;
}

/** Tensors grouped by module path (the name without `.lora_A.weight` / `.lora_B.weight`); other tensors are left out. */
export function loraModules<T>(tensors: Iterable<[string, T]>, directory: string): Map<string, { A: T; B: T }> {
  const modules = new Map<string, { A?: T; B?: T }>();
  for (const [name, tensor] of tensors) {
    const match = SUFFIX.exec(name);
    if (!match) continue;
    const module = name.slice(0, match.index);
    const entry = modules.get(module) ?? {};
    entry[match[1] as 'A' | 'B'] = tensor;
    modules.set(module, entry);
  }
  for (const [module, entry] of modules) {
    if (!entry.A || !entry.B) throw new PeftAdapterError(`${directory}: module ${module} lacks lora_${entry.A ? 'B' : 'A'}`);
  }
  return modules as Map<string, { A: T; B: T }>;
}

export async function readPeftAdapter(directory: string): Promise<LoraAdapter> {
  const config = await readAdapterConfig(directory);
  let bytes: Buffer;
  try {
    bytes = await readFile(join(directory, 'adapter_model.safetensors'));
  } catch (error) {
    throw new PeftAdapterError(`${directory}: cannot read adapter_model.safetensors (${(error as Error).message})`);
  }
  return { config, modules: loraModules(parseSafetensors(bytes).tensors, directory) };
}

/** Writes adapter_config.json and adapter_model.safetensors atomically (temp dir, then rename). */
export async function writePeftAdapter(directory: string, adapter: LoraAdapter): Promise<void> {
  const temporary = `${directory}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(temporary, { recursive: true });
  const tensors = new Map<string, Tensor>();
  for (const [module, { A, B }] of adapter.modules) {
    tensors.set(`${module}.lora_A.weight`, A);
    tensors.set(`${module}.lora_B.weight`, B);
  }
  await writeFile(join(temporary, 'adapter_config.json'), `${JSON.stringify(adapter.config, null, 2)}\n`);
  await writeFile(join(temporary, 'adapter_model.safetensors'), serializeSafetensors(tensors, { metadata: { format: 'pt' } }));
  await rm(directory, { recursive: true, force: true });
  await rename(temporary, directory);
}
