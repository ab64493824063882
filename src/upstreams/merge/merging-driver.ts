import type { Logger } from 'pino';
import { formatMixture } from '../../composition/mixture.js';
import type { ExpectedMixture } from '../../composition/warm-start.js';
import { adapterNamed, baseComposition, OPENAI_PATHS, upstreamNameOf, type DriverContext, type OpenAIEndpoint, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../types.js';
import type { MergedAdapters, ServedComposition } from './merged-adapters.js';

export interface MergingDriverSettings {
  /** How long a request may wait for its exact merge (0: never). */
  waitMs: number;
}

/**
 * For servers that take one LoRA adapter a request, named in `model` (vLLM, SGLang). Without merged
 * adapters (`top1` mode) it sends the heaviest adapter; with them (`merge`) the best composition live
 * now — the exact mixture's merged adapter, the nearest live merge, or the top adapter — while the
 * planner builds better ones in the background. A kind gives the `model` that names an adapter on its server, and what a request for
 * the base model looks like.
 */
export abstract class MergingDriver implements UpstreamDriver {
  abstract readonly kind: string;
  /**
   * Mixtures the registry's examples ask for, to build ahead of traffic (see MergedAdapters.warmStart).
   * Only in merge mode: without it the gateway does not route the examples for nothing.
   */
  readonly warmStart?: (expected: readonly ExpectedMixture[]) => void;

  constructor(
    protected readonly context: DriverContext,
    private readonly settings: MergingDriverSettings,
    readonly merges: MergedAdapters | undefined,
    logger: Logger,
  ) {
    if (merges) {
      this.warmStart = (expected) => {
        logger.info({ mixtures: expected.length, first: expected.slice(0, 3).map((item) => formatMixture(item.mixture)) }, 'warm start: building mixtures the examples ask for in the background');
        merges.warmStart(expected);
      };
    }
  }

  /** The `model` that selects an adapter (by the name the server knows it by). */
  protected abstract modelFor(adapterName: string): string;

  /** The request body for the base model. */
  protected abstract baseBody(body: Record<string, unknown>): Record<string, unknown>;

  /** Prepared now unless the request is to wait for its merge (`waitMs`). */
  prepareRouted(call: RoutedCall): PreparedRequest | Promise<PreparedRequest> {
    if (call.decision.abstained) return { path: OPENAI_PATHS[call.endpoint], body: this.baseBody(call.body), composition: baseComposition(call.decision), served: [], fidelity: 1 };
    const adapters = call.decision.adapters;
    if (!this.merges) return this.topAdapter(call, adapters.length > 1 ? 'top1' : 'single');
    if (this.settings.waitMs > 0) return this.merges.serveWaiting(adapters, this.settings.waitMs).then((choice) => this.servedAs(call, choice));
    return this.servedAs(call, this.merges.serve(adapters));
  }

  /** The request for the composition the merges serve: a merged adapter, or the top adapter alone. */
  private servedAs(call: RoutedCall, choice: ServedComposition): PreparedRequest {
    const note = choice.dropped.length > 0 ? `; dropped=${choice.dropped.join(',')}` : '';
    if (!choice.merge) {
      const kind = choice.requested.length === 1 ? 'single' : 'top1';
      return { ...this.topAdapter(call, `${kind}${note}`), fidelity: choice.fidelity };
    }
    const name = choice.merge;
    return {
      path: OPENAI_PATHS[call.endpoint],
      body: { ...call.body, model: this.modelFor(name) },
      composition: `${choice.exact ? 'merge' : 'nearest_merge'}; adapter=${name}${note}`,
      served: choice.served,
      fidelity: choice.fidelity,
      onUpstreamStatus: (status) => {
        // The server no longer has the merge (it restarted): the planner builds it again under a new name.
        if (status === 404 || status === 400) this.merges?.forget(name);
      },
    };
  }

  /** The decision's heaviest adapter alone. */
  private topAdapter(call: RoutedCall, composition: string): PreparedRequest {
    const top = call.decision.adapters[0];
    return {
      path: OPENAI_PATHS[call.endpoint],
      body: { ...call.body, model: this.modelFor(upstreamNameOf(this.context.adapters, top.id)) },
      composition,
      served: [{ id: top.id, weight: 1 }],
      fidelity: top.weight,
    };
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
