import type { FastifyPluginAsync } from 'fastify';
import { OPENAI_PATHS, type OpenAIEndpoint } from '../../upstreams/types.js';
import type { BodyValidator } from '../direct-proxy.js';
import type { OpenAIProxy, ProxyServices } from '../openai-proxy.js';
import { fastifyCall, sendAnswer, upstreamAuthorization } from '../proxy.js';
import { ErrorResponse } from '../schemas.js';
import { ModelList, NativeCompletionRequest, OPENAI_BODIES } from './openai-schemas.js';

export type { ProxyServices } from '../openai-proxy.js';

export interface OpenAIPluginOptions {
  gateway: ProxyServices;
  /** Answers the prompt endpoints (the direct path shares it). */
  proxy: OpenAIProxy;
  /** Given, once the app is ready, the compiled body schemas of the prompt endpoints (the direct path validates with them). */
  onBodyValidators?: (validators: Record<OpenAIEndpoint, BodyValidator>) => void;
}

/** The OpenAI-compatible routes. */
export const openAIPlugin: FastifyPluginAsync<OpenAIPluginOptions> = async (app, { gateway, proxy, onBodyValidators }) => {
  const routerModels = new Set(gateway.config.upstream.routerModelNames);
  const responses = { '4xx': ErrorResponse, '5xx': ErrorResponse };
  for (const [endpoint, summary] of [['chat', 'OpenAI chat completions, routed when model is the router name'], ['completions', 'OpenAI completions, routed when model is the router name']] as const) {
    app.post(OPENAI_PATHS[endpoint], { schema: { summary, tags: ['openai'], body: OPENAI_BODIES[endpoint], response: responses } }, async (request, reply) =>
      sendAnswer(reply, await proxy.answer(endpoint, request.body as Record<string, unknown>, fastifyCall(request, reply))),
    );
  }
  // The routes' compiler is set up as they are compiled, before the app is ready.
  if (onBodyValidators) app.addHook('onReady', (done) => {
    const compile = app.validatorCompiler!;
    onBodyValidators({
      chat: compile({ schema: OPENAI_BODIES.chat, method: 'POST', url: OPENAI_PATHS.chat, httpPart: 'body' }) as BodyValidator,
      completions: compile({ schema: OPENAI_BODIES.completions, method: 'POST', url: OPENAI_PATHS.completions, httpPart: 'body' }) as BodyValidator,
    });
    done();
  });
  for (const native of gateway.upstream?.driver.nativeEndpoints ?? []) {
    app.post(native.path, { schema: { summary: native.summary, tags: [gateway.upstream!.kind], body: NativeCompletionRequest, response: responses } }, async (request, reply) =>
      sendAnswer(reply, await proxy.answerNative(native, request.body as Record<string, unknown>, fastifyCall(request, reply))),
    );
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
        const authorization = upstreamAuthorization(gateway.config.upstream.apiKey, request.headers.authorization, gateway.config.apiKeys.length > 0);
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
