import { createParser } from 'eventsource-parser';

/** An OpenAI stream that ends without `data: [DONE]` was cut short, however cleanly the connection closed. */
export class IncompleteStreamError extends Error {
  override name = 'IncompleteStreamError';
}

/** The `data` payloads of a server-sent-events byte stream (a native one, to translate), up to (not including) `[DONE]`. */
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

/**
 * An OpenAI stream passed on as it arrives, whole lines at a time: each `data:` payload through `rewrite` (the rest —
 * comments, event names, blank separators, line endings — as it came), up to and including `data: [DONE]`; a body
 * that ends before it throws IncompleteStreamError. Lighter than parsing every event: a chunk in, a chunk out.
 */
export async function* openAIStreamText(body: AsyncIterable<Buffer | Uint8Array | string>, rewrite: (payload: string) => string): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let pending = '';
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const end = pending.lastIndexOf('\n') + 1;
    if (end === 0) continue;
    const lines = pending.slice(0, end).split('\n');
    pending = pending.slice(end);
    // The text ended with a newline: the last element is empty.
    lines.pop();
    let out = '';
    for (const line of lines) {
      if (!line.startsWith('data:')) {
        out += `${line}\n`;
        continue;
      }
      const crlf = line.endsWith('\r') ? '\r' : '';
      const payload = line.slice(line.startsWith('data: ') ? 6 : 5, line.length - crlf.length);
      if (payload === '[DONE]') {
        yield `${out}${line}\n${crlf}\n`;
        return;
      }
      out += `data: ${rewrite(payload)}${crlf}\n`;
    }
    if (out) yield out;
  }
  throw new IncompleteStreamError('The upstream ended the stream before data: [DONE].');
}
