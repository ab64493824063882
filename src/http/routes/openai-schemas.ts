import { Type, type Static } from 'typebox';
import { RoutingOptionProperties } from '../../config/routing-options.js';
import { ChatMessage } from '../schemas.js';

/** Routing options a client may add to an OpenAI request; removed before it goes upstream. */
export const LorauterOptions = Type.Object(RoutingOptionProperties, {
  additionalProperties: false,
  description: 'LoRAuter routing options (only when model is the router name); not sent upstream',
});
export type LorauterOptions = Static<typeof LorauterOptions>;

// Other OpenAI parameters pass through to the upstream, which validates them as it always does.
export const ChatCompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    messages: Type.Array(ChatMessage, { minItems: 1 }),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    lorauter: Type.Optional(LorauterOptions),
  },
  { additionalProperties: true },
);

export const CompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1 }),
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 }), Type.Array(Type.Integer()), Type.Array(Type.Array(Type.Integer()))]),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    lorauter: Type.Optional(LorauterOptions),
  },
  { additionalProperties: true },
);

export const NativeCompletionRequest = Type.Object(
  {
    prompt: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String(), { minItems: 1 })]),
    model: Type.Optional(Type.String({ minLength: 1 })),
    stream: Type.Optional(Type.Boolean()),
    lorauter: Type.Optional(LorauterOptions),
  },
  { additionalProperties: true },
);

export const ModelList = Type.Object({
  object: Type.Literal('list'),
  data: Type.Array(Type.Object({ id: Type.String(), object: Type.String(), owned_by: Type.String() }, { additionalProperties: true })),
});
