import { createParser } from 'eventsource-parser';

/** The `data` payloads of a server-sent-events byte stream, up to (not including) `[DONE]`. */
export async function* ssePayloads(body: AsyncIterable<Buffer | Uint8Array | string>): AsyncIterable<string> {
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
}

export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';
