import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../../gateway.js';
import { GatewayError, invalidRequest } from '../../errors.js';
import { formatMixture } from '../../composition/mixture.js';
import type { RouteDecision } from '../../router/router.js';
import { OPENAI_PATHS, type OpenAIEndpoint, type PreparedRequest } from '../../upstreams/types.js';
import { relayUpstream, upstreamAuthorization } from '../proxy.js';
import { reportDecision, routeMessages, routeRequestTexts, whenDecided, type ChatRouting } from '../routing.js';
import { ErrorResponse, type ChatMessage } from '../schemas.js';
import { ChatCompletionRequest, CompletionRequest, ModelList, NativeCompletionRequest, type LorauterOptions } from './openai-schemas.js';

/** What the OpenAI-compatible routes use. */
export type ProxyServices = Pick<Gateway, 'config' | 'router' | 'registry' | 'upstream' | 'metrics' | 'inflight'>;

function completionPrompt(prompt: unknown): string {
  if (typeof prompt === 'string') return prompt;
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string')) return prompt.join('\n');
  throw invalidRequest('Routing needs a text prompt; token-id prompts can only be sent to a named model.', 'prompt', 'invalid_value');
}

export const openAIPlugin: FastifyPluginAsync<{ gateway: ProxyServices }> = async (app, { gateway }) => {
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

  function announce(reply: FastifyReply, decision: RouteDecision, composition: string, prepared: PreparedRequest) {
    reply.header('x-lorauter-adapters', formatMixture(decision.adapters));
    reply.header('x-lorauter-tasks', formatMixture(decision.tasks));
    reply.header('x-lorauter-composition', composition);
    reply.header('x-lorauter-confidence', decision.confidence.toFixed(4));
    if (prepared.served) reply.header('x-lorauter-served', prepared.served.length > 0 ? formatMixture(prepared.served) : 'base');
    if (prepared.fidelity !== undefined) reply.header('x-lorauter-fidelity', prepared.fidelity.toFixed(4));
  }

  const target = () => ({ client: gateway.upstream!.client, kind: gateway.upstream!.kind, apiKey: gateway.config.upstream.apiKey, checksKeys: gateway.config.apiKeys.length > 0, inflight: gateway.inflight, limiter: gateway.upstream!.limiter, metrics: gateway.metrics });

  async function handle(endpoint: OpenAIEndpoint, request: FastifyRequest, reply: FastifyReply) {
    const upstream = gateway.upstream;
    if (!upstream) throw new GatewayError(503, 'No upstream LLM server is configured (set LORAUTER_UPSTREAM_URL).', 'service_unavailable', null, 'no_upstream');
    const original = request.body as Record<string, unknown>;
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
      reportDecision(request, gateway.metrics, endpoint, decision, composition, prepared, upstream.kind);
      announce(reply, decision, composition, prepared);
    } else {
      since = performance.now();
      prepared = (await upstream.driver.prepareNamed?.(endpoint, original)) ?? { path: OPENAI_PATHS[endpoint], body: original, composition: 'passthrough' };
      reply.header('x-lorauter-composition', prepared.composition);
    }
    return relayUpstream(request, reply, target(), prepared, stream, endpoint, since);
  }

  const responses = { '4xx': ErrorResponse, '5xx': ErrorResponse };
  app.post('/v1/chat/completions', { schema: { summary: 'OpenAI chat completions, routed when model is the router name', tags: ['openai'], body: ChatCompletionRequest, response: responses } }, (request, reply) => handle('chat', request, reply));
  app.post('/v1/completions', { schema: { summary: 'OpenAI completions, routed when model is the router name', tags: ['openai'], body: CompletionRequest, response: responses } }, (request, reply) => handle('completions', request, reply));

  // The upstream kind's own prompt endpoints (llama.cpp's /completion), routed the same way.
  for (const native of gateway.upstream?.driver.nativeEndpoints ?? []) {
    app.post(native.path, { schema: { summary: native.summary, tags: [gateway.upstream!.kind], body: NativeCompletionRequest, response: responses } }, async (request, reply) => {
      const { lorauter: options = {}, ...body } = request.body as Record<string, unknown> & { lorauter?: LorauterOptions };
      const stream = body.stream === true;
      if (body.model !== undefined && !routerModels.has(body.model as string)) {
        reply.header('x-lorauter-composition', 'passthrough');
        return relayUpstream(request, reply, target(), { path: native.path, body: request.body as Record<string, unknown>, composition: 'passthrough' }, stream, native.name);
      }
      const { decision } = await decide(completionPrompt(body.prompt), options, 'prompt');
      const since = performance.now();
      const prepared = await native.prepare(body, decision);
      reportDecision(request, gateway.metrics, native.name, decision, prepared.composition, prepared, gateway.upstream!.kind);
      announce(reply, decision, prepared.composition, prepared);
      return relayUpstream(request, reply, target(), prepared, stream, native.name, since);
    });
  }

  app.get('/v1/models', { schema: { summary: 'The router model, the base model, the adapters, and what the upstream reports', tags: ['openai'], response: { 200: ModelList } } }, async (request) => {
    const created = Math.floor(Date.now() / 1000);
    const data: Record<string, unknown>[] = [...routerModels].map((id) => ({ id, object: 'model', created, owned_by: 'lorauter' }));
    const baseModel = gateway.config.upstream.baseModel;
    if (baseModel) data.push({ id: baseModel, object: 'model', created, owned_by: 'upstream' });
    for (const adapter of gateway.registry.adapters.values()) {
      data.push({ id: adapter.upstreamName ?? adapter.id, object: 'model', created, owned_by: 'lorauter-registry', parent: baseModel ?? null });
    }
    if (gateway.upstream) {
      try {
        const authorization = upstreamAuthorization(gateway.config.upstream.apiKey, request, gateway.config.apiKeys.length > 0);
        const response = await gateway.upstream.client.request({
          method: 'GET',
          path: '/v1/models',
          headers: authorization ? { authorization } : {},
          signal: AbortSignal.timeout(Math.min(gateway.config.upstream.headersTimeoutMs, 5000)),
        });
        const listed = JSON.parse(await gateway.upstream.client.text(response)) as { data?: Record<string, unknown>[] };
        const known = new Set(data.map((model) => model.id));
        for (const model of response.statusCode === 200 && Array.isArray(listed.data) ? listed.data : []) {
          if (typeof model.id === 'string' && !known.has(model.id)) data.push({ object: 'model', owned_by: 'upstream', ...model });
        }
      } catch (error) {
        request.log.warn({ err: (error as Error).message }, 'upstream /v1/models unavailable; listing local models only');
      }
    }
    return { object: 'list' as const, data };
  });
};
