import type { Logger } from 'pino';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { MergeRefusedError } from '../../lora/merge.js';
import { adapterNamed, baseComposition, OPENAI_PATHS, upstreamNameOf, type DriverContext, type OpenAIEndpoint, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../types.js';
import { dropLightAdapters, roundWeights, type MergeManager } from './merge-manager.js';

export type MergeMode = 'top1' | 'merge';

export interface MergingDriverSettings {
  mode: MergeMode;
  mergeWeightStep: number;
  mergeMinWeight: number;
}

/**
 * For servers that take one LoRA adapter a request, named in `model` (vLLM, SGLang). `top1` sends
 * the heaviest adapter; `merge` builds the exact mixture as one merged adapter (rank Σ r_i) and
 * falls back to `top1` when it cannot, saying why. A kind gives the `model` that names an adapter
 * on its server, and what a request for the base model looks like.
 */
export abstract class MergingDriver implements UpstreamDriver {
  abstract readonly kind: string;

  constructor(
    protected readonly context: DriverContext,
    private readonly settings: MergingDriverSettings,
    private readonly merges: MergeManager | undefined,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  /** The `model` that selects an adapter (by the name the server knows it by). */
  protected abstract modelFor(adapterName: string): string;

  /** The request body for the base model. */
  protected abstract baseBody(body: Record<string, unknown>): Record<string, unknown>;

  async prepareRouted(call: RoutedCall): Promise<PreparedRequest> {
    const path = OPENAI_PATHS[call.endpoint];
    if (call.decision.abstained) return { path, body: this.baseBody(call.body), composition: baseComposition(call.decision) };
    const adapters = call.decision.adapters;
    const top = adapters[0];
    const single = (composition: string): PreparedRequest => ({
      path,
      body: { ...call.body, model: this.modelFor(upstreamNameOf(this.context.adapters, top.id)) },
      composition,
    });
    if (this.settings.mode === 'top1' || !this.merges) return single(adapters.length > 1 ? 'top1' : 'single');
    const { kept, dropped } = dropLightAdapters(adapters, this.settings.mergeMinWeight);
    const note = dropped.length > 0 ? `; dropped=${dropped.join(',')}` : '';
    const parts = roundWeights(kept, this.settings.mergeWeightStep);
    // Rounding drops the lightest adapters first, so a lone survivor is the top one.
    if (parts.length === 1) return single(`single${note}`);
    try {
      const name = await this.merges.ensure(parts);
      return {
        path,
        body: { ...call.body, model: this.modelFor(name) },
        composition: `merge; adapter=${name}${note}`,
        onUpstreamStatus: (status) => {
          // The server no longer has the merge (it restarted): load it again next time.
          if (status === 404 || status === 400) this.merges?.forget(name);
        },
      };
    } catch (error) {
      const reason = error instanceof MergeRefusedError ? error.reason : 'load_failed';
      this.metrics.compositionFallbacks.inc({ upstream: this.kind, reason });
      this.logger.warn({ reason, err: (error as Error).message }, 'merged adapter unavailable; falling back to the top adapter');
      return single(`top1; fallback=${reason}`);
    }
  }

  /** A registry adapter named as `model` in the server's own syntax, when it differs from the name. */
  async prepareNamed(endpoint: OpenAIEndpoint, body: Record<string, unknown>): Promise<PreparedRequest | undefined> {
    const adapter = adapterNamed(this.context.adapters, body.model);
    if (!adapter) return undefined;
    const model = this.modelFor(upstreamNameOf(this.context.adapters, adapter.id));
    if (model === body.model) return undefined;
    return { path: OPENAI_PATHS[endpoint], body: { ...body, model }, composition: `adapter; id=${adapter.id}`, answerModel: String(body.model) };
  }

  async close(): Promise<void> {
    await this.merges?.close();
  }
}
