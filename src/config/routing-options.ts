import { Type } from 'typebox';

// The rules for LoRAuter's routing options, written once: the configuration, /v1/route and the
// `lorauter` extension of OpenAI requests all build on these.
export const TopK = (options: { default?: number; env?: string; description?: string } = {}) => Type.Integer({ minimum: 1, maximum: 64, ...options });
export const Temperature = (options: { default?: number; env?: string; description?: string } = {}) => Type.Number({ exclusiveMinimum: 0, maximum: 100, ...options });
export const ExcludeTasks = Type.Array(Type.String({ minLength: 1 }), { maxItems: 1024 });
export const RouteOn = Type.Union([Type.Literal('last_user'), Type.Literal('all_user'), Type.Literal('all')], {
  description: 'Which chat messages to route on: the last user message (default), all user messages, or all messages',
});

/** Per-request routing options, as clients send them. */
export const RoutingOptionProperties = {
  top_k: Type.Optional(TopK()),
  temperature: Type.Optional(Temperature()),
  exclude_tasks: Type.Optional(ExcludeTasks),
  route_on: Type.Optional(RouteOn),
};
