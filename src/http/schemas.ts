import { Type, type Static } from 'typebox';
import { RoutingOptionProperties } from '../config/routing-options.js';

export const MAX_BATCH_INPUTS = 256;

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      param: Type.Union([Type.String(), Type.Null()]),
      code: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  { $id: 'ErrorResponse', description: 'OpenAI-style error' },
);

const ContentPart = Type.Object(
  {
    type: Type.String({ minLength: 1 }),
    text: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

/** OpenAI's chat roles (function: the deprecated form of tool); anything else is refused, not routed as nothing. */
export const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

export const ChatMessage = Type.Object(
  {
    // Typed as the roles themselves: a union built from a mapped list would otherwise be typed `never`.
    role: Type.Unsafe<(typeof CHAT_ROLES)[number]>(Type.Union(CHAT_ROLES.map((role) => Type.Literal(role)), { description: 'who wrote the message' })),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()])),
    name: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type ChatMessage = Static<typeof ChatMessage>;


export const RouteRequest = Type.Object(
  {
    input: Type.Optional(
      Type.Union([
        Type.String({ minLength: 1 }),
        Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: MAX_BATCH_INPUTS }),
      ], { description: `A prompt, or up to ${MAX_BATCH_INPUTS} prompts routed in one call` }),
    ),
    messages: Type.Optional(Type.Array(ChatMessage, { minItems: 1, description: 'OpenAI chat messages' })),
    ...RoutingOptionProperties,
  },
  { additionalProperties: false, $id: 'RouteRequest' },
);
export type RouteRequest = Static<typeof RouteRequest>;

export const RouteDecisionSchema = Type.Object(
  {
    object: Type.Literal('lorauter.route'),
    tasks: Type.Array(
      Type.Object({ id: Type.String(), similarity: Type.Number(), weight: Type.Number(), domain: Type.Optional(Type.String()) }),
    ),
    adapters: Type.Array(Type.Object({ id: Type.String(), weight: Type.Number() }), { description: 'empty when the decision abstained' }),
    confidence: Type.Number({ minimum: 0, maximum: 1, description: 'calibrated confidence in the top task' }),
    abstained: Type.Boolean({ description: 'true: the prompt belongs to the base model, no adapter' }),
    abstain_reason: Type.Optional(Type.Union([Type.Literal('low_confidence'), Type.Literal('base_example'), Type.Literal('all_excluded')])),
    conversation: Type.Optional(Type.Union([Type.Literal('sticky'), Type.Literal('rerouted')], { description: 'LORAUTER_CONVERSATION=sticky: kept from the first user turn, or re-routed on the last one' })),
    top_k: Type.Integer(),
    temperature: Type.Number(),
    encoder: Type.String({ description: 'encoder fingerprint' }),
    cache: Type.Union([Type.Literal('decision'), Type.Literal('memory'), Type.Literal('redis'), Type.Literal('miss')], {
      description: 'decision: the whole decision was cached; memory/redis: the embedding was; miss: encoded now',
    }),
    timings_ms: Type.Object({ embed: Type.Number(), search: Type.Number() }),
  },
  { $id: 'RouteDecision' },
);

export const RouteResponse = Type.Union([
  Type.Ref('RouteDecision'),
  Type.Object({ object: Type.Literal('list'), results: Type.Array(Type.Ref('RouteDecision')) }),
]);

export const TasksResponse = Type.Object({
  object: Type.Literal('list'),
  source: Type.String(),
  encoder: Type.String(),
  data: Type.Array(
    Type.Object({
      id: Type.String(),
      domain: Type.Union([Type.String(), Type.Null()]),
      description: Type.Union([Type.String(), Type.Null()]),
      examples: Type.Integer(),
      adapter: Type.Union([Type.String(), Type.Null()]),
      adapter_scores: Type.Record(Type.String(), Type.Number()),
    }),
  ),
});

export const HealthResponse = Type.Object({ status: Type.String() }, { additionalProperties: true });
