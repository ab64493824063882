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
 * comments, event names, blank separators, line endings — as it came), up to and including `data: [DONE]`, after which
 * `done` is set and nothing more is passed on. A chunk of bytes in, the text of its complete lines out (empty while a
 * line is still incomplete): lighter than parsing every event, and no promise between the upstream and the client.
 */
export class OpenAIStreamRelay {
  done = false;
  private pending = '';
  private readonly decoder = new TextDecoder();

  constructor(private readonly rewrite: (payload: string) => string) {}

  push(chunk: Uint8Array | string): string {
    if (this.done) return '';
    const text = this.pending + (typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
    const end = text.lastIndexOf('\n') + 1;
    this.pending = text.slice(end);
    let out = '';
    for (let start = 0; start < end; ) {
      const next = text.indexOf('\n', start) + 1;
      if (!text.startsWith('data:', start)) {
        out += text.slice(start, next);
        start = next;
        continue;
      }
      const crlf = text.charCodeAt(next - 2) === 13 ? '\r' : '';
      const payload = text.slice(start + (text.charCodeAt(start + 5) === 32 ? 6 : 5), next - 1 - crlf.length);
      if (payload === '[DONE]') {
        this.done = true;
        return `${out}${text.slice(start, next)}${crlf}\n`;
      }
      out += `data: ${this.rewrite(payload)}${crlf}\n`;
      start = next;
    }
    return out;
  }
}
