import type { ChatMessage } from './schemas.js';
import { invalidRequest } from '../errors.js';

function textOf(message: ChatMessage): string {
  if (typeof message.content === 'string') return message.content;
  if (Array.isArray(message.content)) {
    return message.content
      .filter((part) => part.type === 'text' && typeof part.text === 'string')
      .map((part) => part.text)
      .join('\n');
  }
  return '';
}

/** The text a chat request is routed on: by default the last user message. */
export function promptFromMessages(messages: readonly ChatMessage[], routeOn: 'last_user' | 'all_user' | 'all'): string {
  if (routeOn === 'all') return messages.map(textOf).filter(Boolean).join('\n');
  const users = messages.filter((message) => message.role === 'user');
  if (users.length === 0) throw invalidRequest('At least one message with role "user" is needed to route.', 'messages', 'no_user_message');
  const chosen = routeOn === 'last_user' ? [users[users.length - 1]] : users;
  return chosen.map(textOf).filter(Boolean).join('\n');
}

/** The user turns of a chat, as text, in order. */
export function userTurns(messages: readonly ChatMessage[]): string[] {
  return messages.filter((message) => message.role === 'user').map(textOf).filter(Boolean);
}
