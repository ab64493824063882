import type { FastifyPluginAsync } from 'fastify';
import fastJson from 'fast-json-stringify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Gateway } from '../../gateway.js';
import type { RouteDecision } from '../../router/router.js';
import type { WeightedTask } from '../../router/math.js';
import { invalidRequest } from '../../errors.js';
import { reportDecision, routeMessages, routeRequestTexts } from '../routing.js';
import { ErrorResponse, RouteDecisionSchema, RouteRequest, RouteResponse } from '../schemas.js';

// One decision, the usual answer, with a serializer compiled from its schema (about twice as fast
// as JSON.stringify); a batch's list, and errors, with JSON.stringify.
const decisionJson = fastJson(RouteDecisionSchema);
const routeJson = (data: { object: string }) => (data.object === 'lorauter.route' ? decisionJson(data) : JSON.stringify(data));

// Every hit of a cached decision answers the same body (cache "decision", no timings, the options the decision was
// cached under): it is serialised on the first hit and kept beside the decision, whose copies share its task list.
const cachedAnswers = new WeakMap<readonly WeightedTask[], string>();

function answerFor(gateway: RouteServices, decision: RouteDecision, topK: number, temperature: number): string {
  if (decision.embeddingSource !== 'decision') return decisionJson(decisionBody(gateway, decision, topK, temperature));
  let answer = cachedAnswers.get(decision.tasks);
  if (answer === undefined) {
    answer = decisionJson(decisionBody(gateway, decision, topK, temperature));
    cachedAnswers.set(decision.tasks, answer);
  }
  return answer;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** What /v1/route uses. */
export type RouteServices = Pick<Gateway, 'config' | 'router' | 'encoder' | 'metrics'>;

export function decisionBody(gateway: RouteServices, decision: RouteDecision, topK: number, temperature: number, conversation?: 'sticky' | 'rerouted') {
  return {
    object: 'lorauter.route' as const,
    tasks: decision.tasks.map((task) => ({ id: task.id, similarity: task.similarity, weight: task.weight, domain: gateway.router.task(task.id)?.domain })),
    adapters: decision.adapters,
    confidence: decision.confidence,
    abstained: decision.abstained,
    ...(decision.abstainReason ? { abstain_reason: decision.abstainReason } : {}),
    ...(conversation ? { conversation } : {}),
    top_k: topK,
    temperature,
    encoder: gateway.encoder.fingerprint,
    cache: decision.embeddingSource === 'encoder' ? ('miss' as const) : decision.embeddingSource,
    timings_ms: { embed: decision.timings.embedMs, search: decision.timings.searchMs },
  };
}

export const routePlugin: FastifyPluginAsync<{ gateway: RouteServices }> = async (app, { gateway }) => {
  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/v1/route',
    {
      schema: {
        summary: 'Route a prompt to LoRA adapters (LoRAuter)',
        tags: ['routing'],
        body: RouteRequest,
        response: { 200: RouteResponse, '4xx': ErrorResponse },
      },
      // The response schema documents the shape; serialising a union with it would validate every branch per reply.
      serializerCompiler: () => (data) => routeJson(data as { object: string }),
    },
    async (request, reply) => {
      const body = request.body;
      if ((body.input === undefined) === (body.messages === undefined)) {
        throw invalidRequest("Exactly one of 'input' or 'messages' must be given.", body.input === undefined ? 'input' : 'messages', 'invalid_value');
      }
      const topK = body.top_k ?? gateway.config.topK;
      const temperature = body.temperature ?? gateway.config.temperature;
      const options = { topK, temperature, excludeTasks: body.exclude_tasks };
      if (body.messages !== undefined) {
        const routing = routeMessages(gateway.router, body.messages, body.route_on, gateway.config, options, 'exclude_tasks');
        const { decision, conversation } = routing instanceof Promise ? await routing : routing;
        reportDecision(request, gateway.metrics, 'route', decision, conversation && `conversation=${conversation}`);
        return decisionBody(gateway, decision, topK, temperature, conversation);
      }
      const texts = ([] as string[]).concat(body.input!);
      texts.forEach((text, i) => {
        if (text.trim() === '') throw invalidRequest('Prompts must contain non-whitespace text.', Array.isArray(body.input) ? `input.${i}` : 'input', 'empty_input');
      });
      const routing = routeRequestTexts(gateway.router, texts, options, 'exclude_tasks');
      const decisions = routing instanceof Promise ? await routing : routing;
      for (const decision of decisions) reportDecision(request, gateway.metrics, 'route', decision);
      if (!Array.isArray(body.input)) return reply.type(JSON_TYPE).send(answerFor(gateway, decisions[0], topK, temperature));
      return { object: 'list' as const, results: decisions.map((decision) => decisionBody(gateway, decision, topK, temperature)) };
    },
  );
};
