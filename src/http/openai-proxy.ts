import type { Gateway } from '../gateway.js';
import { GatewayError, invalidRequest } from '../errors.js';
import { formatMixture } from '../composition/mixture.js';
import type { RouteDecision } from '../router/router.js';
import { OPENAI_PATHS, type NativeEndpoint, type OpenAIEndpoint, type PreparedRequest } from '../upstreams/types.js';
import { relayUpstream, type ProxyAnswer, type ProxyCall, type ProxyTarget } from './proxy.js';
import { reportDecision, routeMessages, routeRequestTexts, whenDecided, type ChatRouting } from './routing.js';
import type { ChatMessage } from './schemas.js';
import type { LorauterOptions } from './routes/openai-schemas.js';

/** What the OpenAI-compatible endpoints use. */
export type ProxyServices = Pick<Gateway, 'config' | 'router' | 'registry' | 'upstream' | 'metrics' | 'inflight'>;

/**
 * The OpenAI-compatible prompt endpoints, whichever way a request comes in: a body already parsed and
 * validated is routed when its model is the router's name (else passed on as it is), and relayed.
 */
export interface OpenAIProxy {
  answer(endpoint: OpenAIEndpoint, body: Record<string, unknown>, call: ProxyCall): Promise<ProxyAnswer>;
  /** The upstream kind's own prompt endpoint (llama.cpp's /completion), routed the same way. */
  answerNative(native: NativeEndpoint, body: Record<string, unknown>, call: ProxyCall): Promise<ProxyAnswer>;
}

function completionPrompt(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string')) return prompt.join('\n');
  throw invalidRequest('Routing needs a text prompt; token-id prompts can only be sent to a named model.', 'prompt', 'invalid_value');
}

export function createOpenAIProxy(gateway: ProxyServices): OpenAIProxy {
  const routerModels = new Set(gateway.config.upstream.routerModelNames);

  const routeOptions = (options: LorauterOptions) => ({ topK: options.top_k, temperature: options.temperature, excludeTasks: options.exclude_tasks });

  // Both decided now when the decision is cached (no promise on the repeated-prompt path); both throw on an empty prompt.
  function decide(text: string, options: LorauterOptions, param: string): ChatRouting | Promise<ChatRouting> {
    if (text.trim() === '') throw invalidRequest('The prompt to route on is empty.', param, 'empty_input');
    return whenDecided(routeRequestTexts(gateway.router, [text], routeOptions(options), 'lorauter.exclude_tasks'), ([decision]) => ({ decision }));
  }

  function decideChat(messages: ChatMessage[], options: LorauterOptions): ChatRouting | Promise<ChatRouting> {
    return routeMessages(gateway.router, messages, options.route_on, gateway.config, routeOptions(options), 'lorauter.exclude_tasks');
  }

  function announce(call: ProxyCall, decision: RouteDecision, composition: string, prepared: PreparedRequest) {
    call.header('x-lorauter-adapters', formatMixture(decision.adapters));
    call.header('x-lorauter-tasks', formatMixture(decision.tasks));
    call.header('x-lorauter-composition', composition);
    call.header('x-lorauter-confidence', decision.confidence.toFixed(4));
    if (prepared.served) call.header('x-lorauter-served', prepared.served.length > 0 ? formatMixture(prepared.served) : 'base');
    if (prepared.fidelity !== undefined) call.header('x-lorauter-fidelity', prepared.fidelity.toFixed(4));
  }

  const upstreamOf = () => {
    if (!gateway.upstream) throw new GatewayError(503, 'No upstream LLM server is configured (set LORAUTER_UPSTREAM_URL).', 'service_unavailable', null, 'no_upstream');
    return gateway.upstream;
  };

  const target = (upstream: NonNullable<Gateway['upstream']>): ProxyTarget => ({ client: upstream.client, kind: upstream.kind, apiKey: gateway.config.upstream.apiKey, checksKeys: gateway.config.apiKeys.length > 0, inflight: gateway.inflight, limiter: upstream.limiter, metrics: gateway.metrics });

  async function answer(endpoint: OpenAIEndpoint, original: Record<string, unknown>, call: ProxyCall): Promise<ProxyAnswer> {
    const upstream = upstreamOf();
    const stream = original.stream === true;
    let prepared: PreparedRequest;
    // When the driver starts waiting on the upstream for itself (its own lookups): the queue wait counts from there.
    let since: number | undefined;
    if (routerModels.has(original.model as string)) {
      const { lorauter: options = {}, ...body } = original as Record<string, unknown> & { lorauter?: LorauterOptions };
      const routing = endpoint === 'chat' ? decideChat(body.messages as ChatMessage[], options) : decide(completionPrompt(body.prompt), options, 'prompt');
      const { decision, conversation } = routing instanceof Promise ? await routing : routing;
      since = performance.now();
      const preparing = upstream.driver.prepareRouted({ endpoint, body, stream, decision });
      prepared = { ...(preparing instanceof Promise ? await preparing : preparing), answerModel: original.model as string };
      const composition = conversation ? `${prepared.composition}; conversation=${conversation}` : prepared.composition;
      reportDecision(call.log, gateway.metrics, endpoint, decision, composition, prepared, upstream.kind);
      announce(call, decision, composition, prepared);
    } else {
      since = performance.now();
      prepared = (await upstream.driver.prepareNamed?.(endpoint, original)) ?? { path: OPENAI_PATHS[endpoint], body: original, composition: 'passthrough' };
      call.header('x-lorauter-composition', prepared.composition);
    }
    return relayUpstream(call, target(upstream), prepared, stream, endpoint, since);
  }

  async function answerNative(native: NativeEndpoint, original: Record<string, unknown>, call: ProxyCall): Promise<ProxyAnswer> {
    const upstream = upstreamOf();
    const { lorauter: options = {}, ...body } = original as Record<string, unknown> & { lorauter?: LorauterOptions };
    const stream = body.stream === true;
    if (body.model !== undefined && !routerModels.has(body.model as string)) {
      call.header('x-lorauter-composition', 'passthrough');
      return relayUpstream(call, target(upstream), { path: native.path, body: original, composition: 'passthrough' }, stream, native.name);
    }
    const { decision } = await decide(completionPrompt(body.prompt), options, 'prompt');
    const since = performance.now();
    const prepared = await native.prepare(body, decision);
    reportDecision(call.log, gateway.metrics, native.name, decision, prepared.composition, prepared, upstream.kind);
    announce(call, decision, prepared.composition, prepared);
    return relayUpstream(call, target(upstream), prepared, stream, native.name, since);
  }

  return { answer, answerNative };
}
