import type { Logger } from 'pino';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { MergeRefusedError } from '../peft/merge.js';
import { baseComposition, OPENAI_PATHS, upstreamNameOf, type DriverContext, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../types.js';
import { dropLightAdapters, roundWeights, type VllmMergeManager } from './merge-manager.js';

export type VllmMode = 'top1' | 'merge';

/**
 * vLLM serves one LoRA adapter a request, named in `model`. `top1` sends the heaviest adapter;
 * `merge` builds the exact mixture as one merged adapter (rank Σ r_i) and falls back to `top1`
 * when it cannot (rank above max_lora_rank, different target modules, no adapter files).
 */
export class VllmDriver implements UpstreamDriver {
  readonly kind = 'vllm';

  constructor(
    private readonly context: DriverContext,
    private readonly mode: VllmMode,
    private readonly mergeWeightStep: number,
    private readonly mergeMinWeight: number,
    private readonly merges: VllmMergeManager | undefined,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  async prepareRouted(call: RoutedCall): Promise<PreparedRequest> {
    const path = OPENAI_PATHS[call.endpoint];
    if (call.decision.abstained) {
      // vLLM serves its base model for a request that names it, or names no model at all.
      const { model: _model, ...body } = call.body;
      return { path, body: this.context.baseModel ? { ...body, model: this.context.baseModel } : body, composition: baseComposition(call.decision) };
    }
    const adapters = call.decision.adapters;
    const top = adapters[0];
    const single = (composition: string): PreparedRequest => ({
      path,
      body: { ...call.body, model: upstreamNameOf(this.context.adapters, top.id) },
      composition,
    });
    if (this.mode === 'top1' || !this.merges) return single(adapters.length > 1 ? 'top1' : 'single');
    const { kept, dropped } = dropLightAdapters(adapters, this.mergeMinWeight);
    const note = dropped.length > 0 ? `; dropped=${dropped.join(',')}` : '';
    const parts = roundWeights(kept, this.mergeWeightStep);
    // Rounding drops the lightest adapters first, so a lone survivor is the top one.
    if (parts.length === 1) return single(`single${note}`);
    try {
      const name = await this.merges.ensure(parts);
      return {
        path,
        body: { ...call.body, model: name },
        composition: `merge; adapter=${name}${note}`,
        onUpstreamStatus: (status) => {
          if (status === 404) this.merges?.forget(name);
        },
      };
    } catch (error) {
      const reason = error instanceof MergeRefusedError ? error.reason : 'load_failed';
      this.metrics.compositionFallbacks.inc({ upstream: 'vllm', reason });
      this.logger.warn({ reason, err: (error as Error).message }, 'merged adapter unavailable; falling back to the top adapter');
      return single(`top1; fallback=${reason}`);
    }
  }

  async close(): Promise<void> {
    await this.merges?.close();
  }
}
