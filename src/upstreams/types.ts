import type { RouteDecision } from '../router/router.js';
import type { AdapterDefinition } from '../registry/types.js';
import type { Mixture } from '../composition/mixture.js';
import type { ExpectedMixture } from '../composition/warm-start.js';
export type OpenAIEndpoint = 'chat' | 'completions';

export const OPENAI_PATHS: Record<OpenAIEndpoint, string> = { chat: '/v1/chat/completions', completions: '/v1/completions' };

/** A request whose model was the router's name: the driver attaches the decision's adapters. */
export interface RoutedCall {
  endpoint: OpenAIEndpoint;
  body: Record<string, unknown>;
  stream: boolean;
  decision: RouteDecision;
}

export interface PreparedRequest {
  path: string;
  body: Record<string, unknown>;
  /** How the decision reached the upstream, for the x-lorauter-composition header. */
  composition: string;
  /** Routed requests: the adapter weights actually applied (empty: the base model), for x-lorauter-served. */
  served?: Mixture;
  /** Routed requests: Σ min(requested, served) over the decision's adapters; 1 when the decision was the base model. */
  fidelity?: number;
  /** Native (non-OpenAI) upstream API: its JSON answer in the OpenAI shape. */
  translateResponse?: (native: unknown) => unknown;
  /** Native upstream API: its SSE `data` payloads as OpenAI SSE `data` payloads (without [DONE]). */
  translateStream?: (payloads: AsyncIterable<string>) => AsyncIterable<string>;
  /** Told the upstream's status, so that a driver can drop state the upstream no longer has. */
  onUpstreamStatus?: (status: number, body: string) => void;
  /** The `model` the answer reports: what the client asked for, not the merged adapter's name. */
  answerModel?: string;
}

/**
 * An endpoint of the upstream's own API, beside the OpenAI ones, that takes a text `prompt` and
 * that the gateway serves at the same path, routed unless `model` names something else
 * (llama.cpp's POST /completion).
 */
export interface NativeEndpoint {
  path: string;
  /** Label in metrics and logs. */
  name: string;
  summary: string;
  prepare(body: Record<string, unknown>, decision: RouteDecision): Promise<PreparedRequest>;
}

/** One per upstream kind, same shape in each folder under src/upstreams/. */
export interface UpstreamDriver {
  /** Its name in the table of kinds (src/upstreams/index.ts). */
  readonly kind: string;
  prepareRouted(call: RoutedCall): PreparedRequest | Promise<PreparedRequest>;
  /**
   * A request that names a model itself. A driver whose server does not take adapters by name
   * (llama.cpp) attaches the named adapter; undefined sends the request as it is.
   */
  prepareNamed?(endpoint: OpenAIEndpoint, body: Record<string, unknown>): Promise<PreparedRequest | undefined>;
  readonly nativeEndpoints?: readonly NativeEndpoint[];
  /** The server's health endpoint when it is not /health. */
  readonly healthPath?: string;
  /** The mixtures the registry's examples ask for, given at start-up and after each registry change, for kinds that build ahead. */
  warmStart?(expected: readonly ExpectedMixture[]): void;
  close?(): Promise<void>;
}

export interface DriverContext {
  adapters: Map<string, AdapterDefinition>;
  baseModel?: string;
}

/** How an abstained decision reaches the upstream: the base model, and why. */
export function baseComposition(decision: RouteDecision): string {
  return `base; reason=${decision.abstainReason ?? 'low_confidence'}`;
}

/** The registry adapter a request's `model` names: by id, or by the name the upstream knows it by. */
export function adapterNamed(adapters: Map<string, AdapterDefinition>, model: unknown): AdapterDefinition | undefined {
  if (typeof model !== 'string') return undefined;
  return adapters.get(model) ?? [...adapters.values()].find((adapter) => adapter.upstreamName === model);
}

/** The name the upstream knows an adapter by. */
export function upstreamNameOf(adapters: Map<string, AdapterDefinition>, id: string): string {
  return adapters.get(id)?.upstreamName ?? id;
}
