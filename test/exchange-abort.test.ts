import t from 'tap';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { ExchangeAbort, InflightExchanges } from '../src/upstreams/exchange-abort.js';
import { UpstreamClient, toGatewayError } from '../src/upstreams/client.js';
import { UpstreamLimiter } from '../src/upstreams/limiter.js';
import { slotState } from './helpers/wait.js';

t.test('the exchanges in flight: added, deleted from anywhere in the list, each visited once', async (t) => {
  const inflight = new InflightExchanges();
  const [a, b, c, d] = [new ExchangeAbort(), new ExchangeAbort(), new ExchangeAbort(), new ExchangeAbort()];
  for (const exchange of [a, b, c, d]) inflight.add(exchange);
  t.equal(inflight.size, 4);
  t.same(new Set(inflight), new Set([a, b, c, d]));
  inflight.delete(c);
  t.same(new Set(inflight), new Set([a, b, d]), 'from the middle');
  inflight.delete(d);
  t.same(new Set(inflight), new Set([a, b]), 'the newest');
  inflight.delete(a);
  t.same([...inflight], [b], 'the oldest');
  inflight.delete(a);
  t.equal(inflight.size, 1, 'deleting one that is not in flight changes nothing');
  inflight.add(a);
  t.same(new Set(inflight), new Set([a, b]), 'added again after it left');
  inflight.delete(a);
  inflight.delete(b);
  t.equal(inflight.size, 0);
  t.same([...inflight], []);
});

t.test('shutdown may abort exchanges while it walks the list, and each one leaves it', async (t) => {
  const inflight = new InflightExchanges();
  const exchanges = Array.from({ length: 5 }, () => new ExchangeAbort());
  for (const exchange of exchanges) {
    inflight.add(exchange);
    exchange.once('abort', () => inflight.delete(exchange));
  }
  const reason = new Error('stopping');
  for (const exchange of inflight) exchange.abort(reason);
  t.ok(exchanges.every((exchange) => exchange.aborted && exchange.reason === reason), 'every one aborted with the reason');
  t.equal(inflight.size, 0);
});

t.test('an abort happens once; without a reason it is the client closing the request (499)', async (t) => {
  const exchange = new ExchangeAbort();
  let heard = 0;
  exchange.on('abort', () => heard++);
  exchange.abort();
  exchange.abort(new Error('later'));
  t.equal(heard, 1);
  t.equal(toGatewayError(exchange.reason as Error, 'http://upstream').statusCode, 499);
});

t.test('a queued request leaves the limiter\'s queue when its exchange is aborted', async (t) => {
  const limiter = new UpstreamLimiter({ maxConcurrency: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
  const release = await limiter.acquire();
  const exchange = new ExchangeAbort();
  const queued = limiter.acquire(exchange);
  const reason = new Error('client gone');
  exchange.abort(reason);
  await t.rejects(queued, reason);
  const other = limiter.acquire();
  t.equal(await slotState(other), 'waiting', 'its place in the queue is free again');
  release();
  await other;
});

t.test('undici takes it as the signal: an upstream request in flight is aborted', async (t) => {
  const server = createServer(() => {}); // never answers
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const client = new UpstreamClient({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, connectTimeoutMs: 2000, headersTimeoutMs: 30_000, bodyTimeoutMs: 30_000 });
  t.teardown(() => client.close());
  const exchange = new ExchangeAbort();
  const closed = new Promise((resolve) => server.once('request', (request) => request.socket.once('close', resolve)));
  const answer = client.request({ method: 'POST', path: '/v1/chat/completions', body: {}, signal: exchange });
  server.once('request', () => exchange.abort());
  t.equal(await answer.then(() => 'answered', (error: { statusCode?: number }) => error.statusCode), 499);
  await closed;
  t.pass('the upstream connection was closed');
});
