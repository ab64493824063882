import { createParser } from 'eventsource-parser';

/** An OpenAI stream that ends without `data: [DONE]` was cut short, however cleanly the connection closed. */
export class IncompleteStreamError extends Error {
  override name = 'IncompleteStreamError';
}

/**
 * The `data` payloads of a server-sent-events byte stream, up to (not including) `[DONE]`. With
 * `requireDone` (OpenAI streams) a body that ends before `[DONE]` throws IncompleteStreamError.
 */
export async function* ssePayloads(body: AsyncIterable<Buffer | Uint8Array | string>, options: { requireDone?: boolean } = {}): AsyncIterable<string> {
  const queue: string[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event.data) });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    while (queue.length > 0) {
      const data = queue.shift()!;
      if (data === '[DONE]') return;
      yield data;
    }
  }
  if (options.requireDone) throw new IncompleteStreamError('The upstream ended the stream before data: [DONE].');
}

export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
