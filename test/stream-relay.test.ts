import t, { type Test as Tap } from 'tap';
import { EventEmitter, once } from 'node:events';
import { createServer, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { ExchangeAbort, ShutdownAbort } from '../src/upstreams/exchange-abort.js';
import { OpenAIStreamRelay, SSE_DONE } from '../src/upstreams/sse.js';
import { pumpEvents, relayEvents, type StreamSource } from '../src/upstreams/stream-relay.js';
import { withModelField } from '../src/upstreams/model-field.js';
import { until } from './helpers/wait.js';

/** A client's response as the relay sees it: what was written, how it ended, and a switch for "full". */
class FakeSink extends EventEmitter {
  written: string[] = [];
  ended: string[] = [];
  destroyed = false;
  full = false;
  write(text: string): boolean {
    this.written.push(text);
    return !this.full;
  }
  end(text?: string) {
    this.ended.push(text ?? '');
    this.emit('close');
  }
  leave() {
    this.destroyed = true;
    this.emit('close');
  }
}

/** A stream upstream whose every write the test makes; `closed` settles when the gateway's side closes the request. */
async function upstream(t: Tap) {
  let current: ServerResponse | undefined;
  const opened = new EventEmitter();
  let closed!: Promise<void>;
  const server = createServer((_request, response) => {
    current = response;
    closed = new Promise((resolve) => response.once('close', () => resolve()));
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.flushHeaders();
    opened.emit('open');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  t.teardown(async () => {
    await pool.destroy();
    server.closeAllConnections();
    server.close();
  });
  return {
    async stream(signal: ExchangeAbort) {
      const answered = pool.request({ method: 'GET', path: '/', signal });
      if (!current) await once(opened, 'open');
      const response = await answered;
      let released = 0;
      const source: StreamSource = { body: response.body, signal, origin: 'http://upstream', release: () => released++ };
      return { source, released: () => released, closed: () => closed };
    },
    send: (text: string) => current!.write(text),
    finish: () => current!.end(),
  };
}

const relayFor = () => new OpenAIStreamRelay((payload) => withModelField(payload, 'lorauter'));

t.test('events are written as they arrive, renamed; the upstream waits while the client is full; the last event and the end in one write', async (t) => {
  const up = await upstream(t);
  const signal = new ExchangeAbort();
  const { source, released } = await up.stream(signal);
  const sink = new FakeSink();
  sink.full = true;
  relayEvents(relayFor(), sink, source);
  up.send('data: {"model":"sst2","n":1}\n\n');
  await until(() => sink.written.length === 1, 'the first event');
  t.equal(sink.written[0], 'data: {"model":"lorauter","n":1}\n\n');
  t.ok(source.body.isPaused(), 'the upstream is paused while the client is full');
  up.send('data: {"model":"sst2","n":2}\n\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(sink.written.length, 1, 'nothing more written before drain');
  sink.full = false;
  sink.emit('drain');
  await until(() => sink.written.length === 2, 'the second event after drain');
  t.equal(released(), 0, 'the slot is held while the stream goes on');
  up.send('data: {"model":"sst2","n":3}\n\ndata: [DONE]\n\n');
  await until(() => sink.ended.length === 1, 'the end');
  t.same(sink.ended, [`data: {"model":"lorauter","n":3}\n\n${SSE_DONE}`], 'the last event and the end in one write');
  t.equal(released(), 1, 'the slot given back once');
  up.finish();
});

t.test('an upstream that ends before [DONE]: an error event and [DONE], the slot given back', async (t) => {
  const up = await upstream(t);
  const { source, released } = await up.stream(new ExchangeAbort());
  const sink = new FakeSink();
  relayEvents(relayFor(), sink, source);
  up.send('data: {"model":"sst2"}\n\n');
  up.finish();
  await until(() => sink.ended.length === 1, 'the end');
  t.match(sink.ended[0], /^data: \{"error":\{"message":"The upstream ended the stream before data: \[DONE\]\.".*"code":"upstream_unavailable"\}\}\n\ndata: \[DONE\]\n\n$/);
  t.equal(released(), 1);
});

t.test('a client that leaves while the upstream is paused for it: the upstream request is closed and the slot given back', async (t) => {
  const up = await upstream(t);
  const { source, released, closed } = await up.stream(new ExchangeAbort());
  const sink = new FakeSink();
  sink.full = true;
  relayEvents(relayFor(), sink, source);
  up.send('data: {"model":"sst2"}\n\n');
  await until(() => sink.written.length === 1, 'the first event');
  sink.leave();
  await closed();
  t.equal(released(), 1);
  t.same(sink.ended, [], 'nothing written to a client that has gone');
});

t.test('shutdown: the stream ends with a shutting_down error event', async (t) => {
  const up = await upstream(t);
  const signal = new ExchangeAbort();
  const { source, released } = await up.stream(signal);
  const sink = new FakeSink();
  relayEvents(relayFor(), sink, source);
  up.send('data: {"model":"sst2"}\n\n');
  await until(() => sink.written.length === 1, 'the first event');
  signal.abort(new ShutdownAbort());
  await until(() => sink.ended.length === 1, 'the end');
  t.match(sink.ended[0], /"code":"shutting_down"/);
  t.ok(sink.ended[0].endsWith(SSE_DONE));
  t.equal(released(), 1);
});

t.test('translated events: written with backpressure, ended by [DONE]; a translation that fails ends with an error event', async (t) => {
  const up = await upstream(t);
  const { source, released } = await up.stream(new ExchangeAbort());
  const sink = new FakeSink();
  sink.full = true;
  async function* events() {
    yield 'data: {"n":1}\n\n';
    yield 'data: {"n":2}\n\n';
    yield SSE_DONE;
  }
  const pumped = pumpEvents(events(), sink, source);
  await until(() => sink.written.length === 1, 'the first event');
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(sink.written.length, 1, 'waits for drain');
  sink.full = false;
  sink.emit('drain');
  await pumped;
  t.same(sink.written, ['data: {"n":1}\n\n', 'data: {"n":2}\n\n']);
  t.same(sink.ended, [SSE_DONE]);
  t.equal(released(), 1);
  up.finish();

  const again = await upstream(t);
  const failing = await again.stream(new ExchangeAbort());
  const other = new FakeSink();
  async function* broken() {
    yield 'data: {"n":1}\n\n';
    throw new Error('not a LoRAX event');
  }
  await pumpEvents(broken(), other, failing.source);
  t.match(other.ended[0], /The upstream stream failed: not a LoRAX event/);
  t.ok(other.ended[0].endsWith(SSE_DONE));
  await failing.closed();
  t.equal(failing.released(), 1, 'the slot given back and the upstream request closed');
});
