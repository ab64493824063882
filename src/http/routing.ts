import type { FastifyRequest } from 'fastify';
import { inSpan, tracingStarted } from '../observability/tracing.js';
import { invalidRequest } from '../errors.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { PreparedRequest } from '../upstreams/types.js';
import { promptFromMessages, userTurns } from './prompt.js';
import type { ChatMessage } from './schemas.js';
import { UnknownTaskError, type RouteDecision, type RouteOptions, type Router } from '../router/router.js';

/**
 * Routes for an HTTP request: an unknown task in the exclusions is the client's mistake, a 400 naming `excludeParam`.
 * Decisions all in the decision cache come back as they are, not in a promise, unless a span is to be recorded.
 */
export function routeRequestTexts(router: Router, texts: readonly string[], options: RouteOptions, excludeParam: string): RouteDecision[] | Promise<RouteDecision[]> {
  if (tracingStarted()) return routeInSpan(router, texts, options, excludeParam);
  try {
    // Unknown tasks are found before any promise: what the promise may still reject with passes through as it is.
    return router.decide(texts, options);
  } catch (error) {
    throw asRequestError(error, excludeParam);
  }
}

async function routeInSpan(router: Router, texts: readonly string[], options: RouteOptions, excludeParam: string): Promise<RouteDecision[]> {
  try {
    return await inSpan('lorauter.route', { 'lorauter.prompts': texts.length }, async (span) => {
      const decisions = await router.routeMany(texts, options);
      const [first] = decisions;
      if (span.isRecording()) span.setAttributes({
        'lorauter.tasks': first.tasks.map((task) => task.id),
        'lorauter.adapters': first.adapters.map((adapter) => `${adapter.id}=${adapter.weight.toFixed(4)}`),
        'lorauter.confidence': first.confidence,
        'lorauter.abstained': first.abstained,
        'lorauter.embedding_source': first.embeddingSource,
      });
      return decisions;
    });
  } catch (error) {
    throw asRequestError(error, excludeParam);
  }
}

function asRequestError(error: unknown, excludeParam: string): unknown {
  return error instanceof UnknownTaskError ? invalidRequest(error.message, excludeParam, 'unknown_task') : error;
}

/** Counts a decision in /metrics and logs it in one line (never the prompt text). */
export function reportDecision(
  request: FastifyRequest,
  metrics: GatewayMetrics,
  endpoint: string,
  decision: RouteDecision,
  composition?: string,
  served?: Pick<PreparedRequest, 'served' | 'fidelity'>,
  upstream?: string,
): void {
  metrics.routeDecisions.inc({ endpoint });
  metrics.routeConfidence.observe(decision.confidence);
  metrics.routeDuration.observe((decision.timings.embedMs + decision.timings.searchMs) / 1000);
  if (decision.embeddingSource !== 'decision') {
    metrics.routeEmbedDuration.observe({ source: decision.embeddingSource }, decision.timings.embedMs / 1000);
    metrics.routeSearchDuration.observe(decision.timings.searchMs / 1000);
  }
  metrics.adapterDecisions.inc({ adapter: decision.abstained ? 'base' : (decision.adapters[0]?.id ?? 'none') });
  if (upstream && served?.fidelity !== undefined && !decision.abstained) metrics.compositionFidelity.observe({ upstream }, served.fidelity);
  // Fastify's logger is pino's: skip building the line when info is off.
  if (!(request.log as unknown as { isLevelEnabled(level: string): boolean }).isLevelEnabled('info')) return;
  request.log.info(
    {
      endpoint,
      tasks: decision.tasks.map((task) => ({ id: task.id, similarity: round(task.similarity), weight: round(task.weight) })),
      adapters: decision.adapters.map((adapter) => ({ id: adapter.id, weight: round(adapter.weight) })),
      confidence: round(decision.confidence),
      ...(decision.abstained ? { abstained: decision.abstainReason } : {}),
      ...(composition ? { composition } : {}),
      ...(served?.served ? { served: served.served.map((adapter) => ({ id: adapter.id, weight: round(adapter.weight) })) } : {}),
      ...(served?.fidelity !== undefined ? { fidelity: round(served.fidelity) } : {}),
    },
    'routed',
  );
}

const round = (x: number) => Number(x.toFixed(4));

export type ConversationMode = 'last_user' | 'sticky';

export interface ChatRouting {
  decision: RouteDecision;
  /** sticky: kept from the first user turn; rerouted: a later turn was confidently about another task. */
  conversation?: 'sticky' | 'rerouted';
}

/**
 * Routes a chat. In sticky mode a multi-turn conversation keeps the decision made on its first
 * user turn — recomputed from the request itself (or served from the decision cache), so no
 * session state is kept — unless its last user turn is at least `rerouteConfidence` confident
 * about another task. Like routeRequestTexts, decided now when the decisions are cached.
 */
export function routeChat(
  router: Router,
  messages: readonly ChatMessage[],
  /** What `messages` are routed on by `settings.routeOn` (promptFromMessages), as the caller built and checked it. */
  prompt: string,
  settings: { routeOn: 'last_user' | 'all_user' | 'all'; conversation: ConversationMode; rerouteConfidence: number },
  options: RouteOptions,
  excludeParam: string,
): ChatRouting | Promise<ChatRouting> {
  const turns = userTurns(messages);
  if (settings.conversation !== 'sticky' || settings.routeOn !== 'last_user' || turns.length < 2) {
    return whenDecided(routeRequestTexts(router, [prompt], options, excludeParam), ([decision]) => ({ decision }));
  }
  return whenDecided(routeRequestTexts(router, [turns[0], turns[turns.length - 1]], options, excludeParam), ([first, last]) => {
    const moved = !last.abstained && last.confidence >= settings.rerouteConfidence && last.tasks[0]?.id !== first.tasks[0]?.id;
    return moved ? { decision: last, conversation: 'rerouted' } : { decision: first, conversation: 'sticky' };
  });
}

/**
 * Routes a chat's messages on the prompt `routeOn` makes of them (routeChat), in the configured conversation mode; a
 * prompt that is empty or only whitespace is the client's mistake (400 on `messages`).
 */
export function routeMessages(
  router: Router,
  messages: readonly ChatMessage[],
  routeOn: 'last_user' | 'all_user' | 'all' = 'last_user',
  config: { conversation: ConversationMode; rerouteConfidence: number },
  options: RouteOptions,
  excludeParam: string,
): ChatRouting | Promise<ChatRouting> {
  const prompt = promptFromMessages(messages, routeOn);
  if (prompt.trim() === '') throw invalidRequest('The prompt to route on is empty: the messages must contain non-whitespace text.', 'messages', 'empty_input');
  return routeChat(router, messages, prompt, { routeOn, conversation: config.conversation, rerouteConfidence: config.rerouteConfidence }, options, excludeParam);
}

/** `then` applied to decisions at hand now, to pending ones when they come. */
export function whenDecided<T>(decisions: RouteDecision[] | Promise<RouteDecision[]>, then: (decisions: RouteDecision[]) => T): T | Promise<T> {
  return decisions instanceof Promise ? decisions.then(then) : then(decisions);
}
