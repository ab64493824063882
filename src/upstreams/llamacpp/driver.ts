import { basename } from 'node:path';
import type { Logger } from 'pino';
import { fidelity, roundWeights, weightsOf } from '../../composition/mixture.js';
import type { UpstreamClient } from '../client.js';
import { SharedLookup } from '../shared-lookup.js';
import { adapterNamed, baseComposition, OPENAI_PATHS, type DriverContext, type NativeEndpoint, type PreparedRequest, type RoutedCall, type UpstreamDriver } from '../types.js';

interface LoadedAdapter {
  id: number;
  path: string;
  scale?: number;
}

const TABLE_TTL_MS = 30_000;
// A failed or refused read of the table is not tried again for this long; a forced one (an adapter missing
// from it) not more often than this.
const TABLE_RETRY_MS = 5_000;
// The longest a read of the table waits, whatever the headers timeout: requests wait on it.
const TABLE_TIMEOUT_MAX_MS = 5_000;

/** File name without directory and extension: "/models/lora-sst2.gguf" → "lora-sst2". */
export function adapterStem(path: string): string {
  return basename(path).replace(/\.[^.]+$/, '');
}

/**
 * llama.cpp server: an exact output-space mixture per request. Adapters loaded with --lora are
 * listed by GET /lora-adapters; a request's "lora": [{"id", "scale"}] sets their scales (others 0).
 */
export type CachePromptMode = 'on' | 'off' | 'auto';

export class LlamaCppDriver implements UpstreamDriver {
  readonly kind = 'llamacpp';
  private readonly table: SharedLookup<Map<string, number>>;
  private lastAdapterSet: string | undefined;
  readonly nativeEndpoints: readonly NativeEndpoint[] = [
    {
      path: '/completion',
      name: 'native_completion',
      summary: "llama.cpp's native completion, routed unless model names something else",
      prepare: (body, decision) => this.prepareNativeCompletion(body, decision),
    },
  ];

  constructor(
    private readonly client: UpstreamClient,
    private readonly context: DriverContext,
    private readonly logger: Logger,
    private readonly cachePrompt: CachePromptMode = 'auto',
    private readonly weightStep = 0,
    headersTimeoutMs = TABLE_TIMEOUT_MAX_MS,
  ) {
    this.table = new SharedLookup({
      read: (signal) => this.readTable(signal),
      fallback: new Map(),
      ttlMs: TABLE_TTL_MS,
      timeoutMs: Math.min(headersTimeoutMs, TABLE_TIMEOUT_MAX_MS),
      failureMemoryMs: TABLE_RETRY_MS,
      minRefreshMs: TABLE_RETRY_MS,
      onFailure: (error) => this.logger.warn({ err: error.message }, 'GET /lora-adapters failed; routing with the adapters known (none if never read)'),
    });
  }

  /**
   * Some llama.cpp builds reuse a slot's cached prompt across requests with different "lora" sets,
   * silently mixing in the previous adapters (ggml-org/llama.cpp#26207). `off` never lets it;
   * `auto` keeps the cache while the adapter set stays the same and sends cache_prompt: false
   * when it changes; `on` leaves the request as the client sent it.
   */
  private withCacheSafety(body: Record<string, unknown>, lora: readonly { id: number; scale: number }[]): Record<string, unknown> {
    if (this.cachePrompt === 'on') return body;
    const set = lora.map((entry) => `${entry.id}:${entry.scale.toFixed(4)}`).sort().join(',');
    const changed = set !== this.lastAdapterSet;
    this.lastAdapterSet = set;
    return this.cachePrompt === 'off' || changed ? { ...body, cache_prompt: false } : body;
  }

  async prepareRouted(call: RoutedCall): Promise<PreparedRequest> {
    const { lora, missing, served } = await this.routedLora(call.decision);
    const body: Record<string, unknown> = { ...call.body, lora };
    if (this.context.baseModel) body.model = this.context.baseModel;
    return {
      path: OPENAI_PATHS[call.endpoint],
      body: this.withCacheSafety(body, lora),
      composition: this.compositionOf(call.decision, missing),
      onUpstreamStatus: this.forgetOnAdapterError,
      ...served,
    };
  }

  /**
   * The decision's scales, on LORAUTER_LLAMACPP_WEIGHT_STEP's grid when set (requests that share a
   * configuration batch together: llama.cpp does not batch requests whose lora settings differ),
   * and what they serve of the decision.
   */
  private async routedLora(decision: RoutedCall['decision']) {
    const adapters = this.weightStep > 0 && decision.adapters.length > 0 ? roundWeights(decision.adapters, this.weightStep) : decision.adapters;
    const { lora, missing } = await this.loraFor(adapters);
    const applied = adapters.filter((adapter) => !missing.includes(adapter.id));
    const served = decision.abstained ? { served: [], fidelity: 1 } : { served: applied, fidelity: fidelity(decision.adapters, weightsOf(applied)) };
    return { lora, missing, served };
  }

  /** `model` naming a registry adapter: that adapter at scale 1 (llama.cpp takes adapters only in "lora"). */
  async prepareNamed(endpoint: RoutedCall['endpoint'], body: Record<string, unknown>): Promise<PreparedRequest | undefined> {
    const name = body.model;
    const adapter = adapterNamed(this.context.adapters, name) ?? [...this.context.adapters.values()].find((a) => name === a.llamaCppName);
    if (!adapter) return undefined;
    const { lora, missing } = await this.loraFor([{ id: adapter.id, weight: 1 }]);
    if (missing.length > 0) return undefined;
    return {
      path: OPENAI_PATHS[endpoint],
      body: this.withCacheSafety({ ...body, lora, ...(this.context.baseModel ? { model: this.context.baseModel } : {}) }, lora),
      composition: `adapter; id=${adapter.id}`,
      answerModel: String(name),
      onUpstreamStatus: this.forgetOnAdapterError,
    };
  }

  /** llama.cpp's native POST /completion (prompt, n_predict, …) with the mixture attached. */
  async prepareNativeCompletion(body: Record<string, unknown>, decision: RoutedCall['decision']): Promise<PreparedRequest> {
    const { lora, missing, served } = await this.routedLora(decision);
    const { model: _model, ...rest } = body;
    return {
      path: '/completion',
      body: this.withCacheSafety({ ...rest, lora }, lora),
      composition: this.compositionOf(decision, missing),
      onUpstreamStatus: this.forgetOnAdapterError,
      ...served,
    };
  }

  // An empty "lora" list sets every adapter's scale to 0: the base model answers.
  private compositionOf(decision: RoutedCall['decision'], missing: string[]): string {
    if (decision.abstained) return baseComposition(decision);
    return missing.length > 0 ? `mixture; missing=${missing.join(',')}` : 'mixture';
  }

  private async loraFor(adapters: RoutedCall['decision']['adapters']): Promise<{ lora: { id: number; scale: number }[]; missing: string[] }> {
    const wanted = adapters.map((adapter) => ({ ...adapter, name: this.context.adapters.get(adapter.id)?.llamaCppName ?? adapter.id }));
    let table = await this.table.get();
    if (wanted.some((adapter) => !table.has(adapter.name))) table = await this.table.get(true);
    const resolved = wanted.filter((adapter) => table.has(adapter.name));
    const missing = wanted.filter((adapter) => !table.has(adapter.name)).map((adapter) => adapter.id);
    if (missing.length > 0) this.logger.warn({ missing }, 'adapters not loaded in llama.cpp server; mixing the rest');
    return { lora: resolved.map((adapter) => ({ id: table.get(adapter.name)!, scale: adapter.weight })), missing };
  }

  /** A rejected adapter id means the server's adapters changed (it was restarted): read the table again next time. */
  private readonly forgetOnAdapterError = (status: number, body: string) => {
    if (status === 400 && /adapter/i.test(body)) this.table.invalidate();
  };

  private async readTable(signal: AbortSignal): Promise<Map<string, number>> {
    const { status, data } = await this.client.json<LoadedAdapter[]>('GET', '/lora-adapters', undefined, undefined, signal);
    if (status !== 200 || !Array.isArray(data)) throw new Error(`GET /lora-adapters answered ${status}${Array.isArray(data) ? '' : ' without a list'}`);
    const byName = new Map<string, number>();
    for (const adapter of data) {
      byName.set(adapterStem(adapter.path), adapter.id);
      byName.set(adapter.path, adapter.id);
      byName.set(String(adapter.id), adapter.id);
    }
    return byName;
  }
}
