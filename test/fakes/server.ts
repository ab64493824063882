import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** The client went away before the answer was complete. */
  aborted: boolean;
  /** The exchange is over: answered whole, or cut off (then `aborted`). */
  closed?: boolean;
}

export interface Behaviour {
  /** Wait this long before sending headers. */
  headersDelayMs?: number;
  /** Delay between streamed chunks. */
  chunkDelayMs?: number;
  /** Destroy the connection after this many streamed chunks. */
  failAfterChunks?: number;
  /** Words to answer with; a function gets the request and what served it (the fake's own summary: model, adapter or scales). */
  words?: string[] | ((request: Received, servedBy: string) => string[]);
  /** Wait this long between `data: [DONE]` and the end of the body (its last chunk arriving on its own). */
  endDelayMs?: number;
  /** Streams end without `data: [DONE]` (a server that stopped early but cleanly). */
  omitDone?: boolean;
  /** Answer every request with this instead (a misbehaving server). */
  respond?: (res: ServerResponse) => void;
  /** Per request: answer 500, never answer, or drop the connection (a flaky server). */
  fault?: (request: Received) => 'error' | 'stall' | 'drop' | undefined;
}

/** The words a fake answers with: the behaviour's, else its default. */
export function answerWords(behaviour: Behaviour, request: Received, servedBy: string, fallback: string[]): string[] {
  const words = behaviour.words;
  return typeof words === 'function' ? words(request, servedBy) : (words ?? fallback);
}

export type Handler = (request: Received, response: ServerResponse, fake: FakeServer) => Promise<void> | void;

/** Minimal HTTP server for fake upstreams: records every request, lets tests shape timing and failures. */
export class FakeServer {
  readonly received: Received[] = [];
  behaviour: Behaviour = {};
  private server?: Server;
  private readonly routes = new Map<string, Handler>();

  route(method: string, path: string, handler: Handler): this {
    this.routes.set(`${method} ${path}`, handler);
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  last(path?: string): Received {
    const matching = path ? this.received.filter((r) => r.path === path) : this.received;
    return matching[matching.length - 1];
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.dispatch(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const path = (req.url ?? '/').split('?')[0];
    const record: Received = { method: req.method ?? 'GET', path, headers: req.headers, body: raw, aborted: false };
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
      record.closed = true;
    });
    this.received.push(record);
    if (raw && String(req.headers['content-type'] ?? '').includes('application/json')) {
      try {
        record.body = JSON.parse(raw);
      } catch {
        return json(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error', code: 400 } });
      }
    }
    const handler = this.routes.get(`${record.method} ${path}`);
    if (!handler) return json(res, 404, { error: { message: `no route ${record.method} ${path}`, type: 'not_found_error', code: 404 } });
    const fault = this.behaviour.fault?.(record);
    if (fault === 'error') return json(res, 500, { error: { message: 'injected fault', type: 'InternalServerError', param: null, code: 500 } });
    if (fault === 'drop') return void res.socket?.destroy();
    if (fault === 'stall') return void (await new Promise((resolve) => res.on('close', resolve)));
    if (this.behaviour.headersDelayMs) await sleep(this.behaviour.headersDelayMs);
    if (res.destroyed) return;
    if (this.behaviour.respond) return this.behaviour.respond(res);
    await handler(record, res, this);
  }

  /** Streams `events` as SSE `data:` lines, honouring chunkDelayMs and failAfterChunks. */
  async streamEvents(res: ServerResponse, events: string[], done = true): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let sent = 0;
    for (const event of events) {
      if (res.destroyed) return;
      if (this.behaviour.failAfterChunks !== undefined && sent >= this.behaviour.failAfterChunks) {
        res.socket?.destroy();
        return;
      }
      res.write(`data: ${event}\n\n`);
      sent++;
      if (this.behaviour.chunkDelayMs) await sleep(this.behaviour.chunkDelayMs);
    }
    if (done && !this.behaviour.omitDone) res.write('data: [DONE]\n\n');
    if (this.behaviour.endDelayMs) await sleep(this.behaviour.endDelayMs);
    res.end();
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A non-streamed OpenAI answer: chat.completion or text_completion. */
export function completion(kind: 'chat' | 'completions', model: string, content: string) {
  const choice = kind === 'chat' ? { index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null } : { index: 0, text: content, finish_reason: 'stop', logprobs: null };
  const words = content.split(' ').length;
  return {
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${Date.now()}`,
    object: kind === 'chat' ? 'chat.completion' : 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [choice],
    usage: { prompt_tokens: 5, completion_tokens: words, total_tokens: 5 + words },
  };
}

/** OpenAI streaming chunks for chat or completions, one word each, then a final chunk with finish_reason. */
export function openAIChunks(kind: 'chat' | 'completions', model: string, words: string[]): string[] {
  const id = `chunk-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const piece = (text: string, finish: string | null) =>
    JSON.stringify(
      kind === 'chat'
        ? { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta: text ? { content: text } : {}, finish_reason: finish }] }
        : { id, object: 'text_completion', created, model, choices: [{ index: 0, text, finish_reason: finish, logprobs: null }] },
    );
  return [...words.map((word, i) => piece(i === 0 ? word : ` ${word}`, null)), piece('', 'stop')];
}

/** A toy tokenizer for the fakes' /tokenize endpoints: one token a word, id = a hash of the word. */
export function toyTokens(text: string): { id: number; word: string }[] {
  return text.split(/\s+/).filter(Boolean).map((word) => ({ id: [...word].reduce((sum, c) => (sum * 31 + c.charCodeAt(0)) % 32000, 7), word }));
}
