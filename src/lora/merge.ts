import type { LoraAdapter } from './adapter.js';
import { loraScaling } from './adapter.js';
import type { Tensor } from './safetensors.js';

export class MergeRefusedError extends Error {
  override name = 'MergeRefusedError';
  constructor(
    readonly reason:
      | 'rank_too_large'
      | 'target_modules_differ'
      | 'shapes_differ'
      | 'patterns_unsupported'
      | 'adapter_unavailable'
      | 'dora'
      | 'modules_to_save'
      | 'embedding_layers'
      | 'merge_rate_limited',
    message: string,
  ) {
    super(message);
  }
}

/** The checks both merges make before any tensor is read: ranks within the budget, no per-module patterns, the same modules. */
export function assertMergeable(parts: readonly { config: LoraAdapter['config']; modules: readonly string[] }[], maxRank?: number): number {
  if (parts.length === 0) throw new Error('nothing to merge');
  const rank = parts.reduce((sum, part) => sum + part.config.r, 0);
  if (maxRank !== undefined && rank > maxRank) throw new MergeRefusedError('rank_too_large', `merged rank ${rank} exceeds max_lora_rank ${maxRank}`);
  for (const { config } of parts) {
    const patterns = [config.rank_pattern, config.alpha_pattern].filter((p) => p && Object.keys(p as object).length > 0);
    if (patterns.length > 0) throw new MergeRefusedError('patterns_unsupported', 'adapters with rank_pattern/alpha_pattern are not merged');
  }
  const modules = [...parts[0].modules].sort();
  for (const part of parts.slice(1)) {
    const other = [...part.modules].sort();
    if (other.length !== modules.length || other.some((name, i) => name !== modules[i])) {
      throw new MergeRefusedError('target_modules_differ', 'adapters target different modules');
    }
  }
  return rank;
}

/** A and B shapes of one module in every part: A [r_i, in] and B [out, r_i], the same in and out. */
export function assertModuleShapes(module: string, pieces: readonly { r: number; A: readonly number[]; B: readonly number[] }[]): { inFeatures: number; outFeatures: number } {
  const [, inFeatures] = pieces[0].A;
  const [outFeatures] = pieces[0].B;
  for (const piece of pieces) {
    if (piece.A.length !== 2 || piece.B.length !== 2 || piece.A[0] !== piece.r || piece.B[1] !== piece.r || piece.A[1] !== inFeatures || piece.B[0] !== outFeatures) {
      throw new MergeRefusedError('shapes_differ', `module ${module}: shapes differ between adapters`);
    }
  }
  return { inFeatures, outFeatures };
}

/** adapter_config.json of a merge of rank `rank`: lora_alpha = r, so that its own scaling is 1. */
export function mergedConfig(configs: readonly LoraAdapter['config'][], rank: number): LoraAdapter['config'] {
  const first = configs[0];
  const targets = [...new Set(configs.flatMap((config) => ([] as string[]).concat(config.target_modules)))].sort();
  return {
    ...first,
    r: rank,
    lora_alpha: rank,
    use_rslora: false,
    rank_pattern: {},
    alpha_pattern: {},
    target_modules: typeof first.target_modules === 'string' ? first.target_modules : targets,
    lora_dropout: 0,
    inference_mode: true,
  };
}

/**
 * The exact output-space mixture Σ w_i·s_i·B_i·A_i as ONE LoRA adapter of rank Σ r_i:
 * A = [A_1; A_2; …] (rows stacked), B = [w_1·s_1·B_1 | w_2·s_2·B_2 | …] (columns side by side),
 * written with lora_alpha = r so that its own scaling is 1 and ΔW = B·A exactly.
 */
export function mergeLoraAdapters(parts: readonly { adapter: LoraAdapter; weight: number }[], options: { maxRank?: number } = {}): LoraAdapter {
  const rank = assertMergeable(parts.map(({ adapter }) => ({ config: adapter.config, modules: [...adapter.modules.keys()] })), options.maxRank);
  const modules = [...parts[0].adapter.modules.keys()].sort();
  const merged = new Map<string, { A: Tensor; B: Tensor }>();
  for (const module of modules) {
    const pieces = parts.map(({ adapter, weight }) => ({ ...adapter.modules.get(module)!, factor: weight * loraScaling(adapter.config), r: adapter.config.r }));
    const { inFeatures, outFeatures } = assertModuleShapes(module, pieces.map((piece) => ({ r: piece.r, A: piece.A.shape, B: piece.B.shape })));
    const A = new Float32Array(rank * inFeatures);
    const B = new Float32Array(outFeatures * rank);
    let offset = 0;
    for (const piece of pieces) {
      A.set(piece.A.data, offset * inFeatures);
      for (let row = 0; row < outFeatures; row++) {
        for (let k = 0; k < piece.r; k++) B[row * rank + offset + k] = piece.factor * piece.B.data[row * piece.r + k];
      }
      offset += piece.r;
    }
    merged.set(module, { A: { shape: [rank, inFeatures], data: A }, B: { shape: [outFeatures, rank], data: B } });
  }
  return { config: mergedConfig(parts.map(({ adapter }) => adapter.config), rank), modules: merged };
}

/** ΔW = scaling · B·A for one module, row-major [out, in]; for tests and checks. */
export function deltaWeight(adapter: LoraAdapter, module: string): Float32Array {
  const { A, B } = adapter.modules.get(module)!;
  const [r, inFeatures] = A.shape;
  const [outFeatures] = B.shape;
  const scaling = loraScaling(adapter.config);
  const out = new Float32Array(outFeatures * inFeatures);
  for (let i = 0; i < outFeatures; i++) {
    for (let k = 0; k < r; k++) {
      const b = B.data[i * r + k] * scaling;
      if (b === 0) continue;
      for (let j = 0; j < inFeatures; j++) out[i * inFeatures + j] += b * A.data[k * inFeatures + j];
    }
  }
  return out;
}
