// Synthetic PEFT LoRA adapters of a real architecture's shapes, for the composition bench and the
// merge tests: random fp16/bf16/fp32 values of a plausible size, written tensor by tensor (never committed).
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BYTES, safetensorsHeader, type Dtype } from '../src/lora/safetensors.js';

export interface Architecture {
  name: string;
  layers: number;
  hidden: number;
  intermediate: number;
}

export const LLAMA_2_7B: Architecture = { name: 'meta-llama/Llama-2-7b-hf', layers: 32, hidden: 4096, intermediate: 11008 };

/** [module path, in features, out features] of every linear module of a Llama decoder. */
export function llamaLinearModules(arch: Architecture): [string, number, number][] {
  const modules: [string, number, number][] = [];
  for (let layer = 0; layer < arch.layers; layer++) {
    const prefix = `base_model.model.model.layers.${layer}`;
    for (const name of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) modules.push([`${prefix}.self_attn.${name}`, arch.hidden, arch.hidden]);
    modules.push([`${prefix}.mlp.gate_proj`, arch.hidden, arch.intermediate]);
    modules.push([`${prefix}.mlp.up_proj`, arch.hidden, arch.intermediate]);
    modules.push([`${prefix}.mlp.down_proj`, arch.intermediate, arch.hidden]);
  }
  return modules;
}

/** Writes adapter_config.json and adapter_model.safetensors; returns the safetensors file's size. */
export function writeSyntheticAdapter(directory: string, options: { arch: Architecture; rank: number; alpha?: number; dtype?: Dtype }): number {
  const dtype = options.dtype ?? 'F16';
  const { arch, rank } = options;
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    join(directory, 'adapter_config.json'),
    JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: arch.name, r: rank, lora_alpha: options.alpha ?? 2 * rank, lora_dropout: 0, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], bias: 'none', task_type: 'CAUSAL_LM' }, null, 2),
  );
  const layout = llamaLinearModules(arch).flatMap(([module, inFeatures, outFeatures]) => [
    { name: `${module}.lora_A.weight`, dtype, shape: [rank, inFeatures] },
    { name: `${module}.lora_B.weight`, dtype, shape: [outFeatures, rank] },
  ]);
  layout.sort((a, b) => (a.name < b.name ? -1 : 1));
  const { header, dataBytes } = safetensorsHeader(layout, { format: 'pt' });
  const fd = openSync(join(directory, 'adapter_model.safetensors'), 'w');
  try {
    writeSync(fd, header);
    for (const tensor of layout) writeSync(fd, randomValues(tensor.shape[0] * tensor.shape[1], dtype));
  } finally {
    closeSync(fd);
  }
  return header.byteLength + dataBytes;
}

/** Random values of magnitude 2^-8..2^-4, either sign: never NaN or infinite. */
function randomValues(count: number, dtype: Dtype): Uint8Array {
  const bytes = new Uint8Array(count * BYTES[dtype]);
  randomFillSync(bytes);
  if (dtype === 'F32') {
    const words = new Uint32Array(bytes.buffer);
    for (let i = 0; i < count; i++) words[i] = (words[i] & 0x807fffff) | ((119 + (words[i] & 3)) << 23);
  } else if (dtype === 'F16') {
    const halves = new Uint16Array(bytes.buffer);
    for (let i = 0; i < count; i++) halves[i] = (halves[i] & 0x83ff) | ((7 + (halves[i] & 3)) << 10);
  } else {
    const halves = new Uint16Array(bytes.buffer);
    for (let i = 0; i < count; i++) halves[i] = (halves[i] & 0x807f) | ((119 + (halves[i] & 3)) << 7);
  }
  return bytes;
}
