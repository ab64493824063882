import t from 'tap';
import { connect } from 'node:net';
import { startFakeVllm } from './fakes/vllm.js';
import { listenGateway, tinyLlamaRegistry } from './helpers/gateway.js';
import { until } from './helpers/wait.js';

const registry = await tinyLlamaRegistry();
const base = 'tiny-llama';

t.test('while the app closes, a request that still comes on an open connection is refused: 503 in the OpenAI shape, the connection closed', async (t) => {
  const fake = await startFakeVllm({ baseModel: base, staticAdapters: ['sst2', 'wmt16_translate_deen', 'e2e_nlg'], maxLoraRank: 64 });
  const gateway = await listenGateway({ upstream: { url: fake.url, kind: 'vllm', baseModel: base, vllmMode: 'top1' } }, { registry });
  t.teardown(async () => {
    await gateway.close();
    await fake.stop();
  });
  const { port } = gateway.app.server.address() as { port: number };
  const body = JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: 'Is this review positive? A gorgeous, witty movie.' }] });
  const request = (id: string) => `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${id}\r\n\r\n${body}`;
  const socket = connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const ended = new Promise((resolve) => socket.on('close', resolve));
  // The first request is slow upstream: the app starts closing while it is in flight, its connection still open.
  fake.behaviour = { headersDelayMs: 300 };
  socket.write(request('first'));
  await until(() => fake.received.some((received) => received.path === '/v1/chat/completions'), 'the first request to reach the upstream');
  const closing = gateway.app.close();
  await until(() => !gateway.app.server.listening, 'the app to stop listening');
  // Pipelined on the same connection: it comes in while the first is answered.
  socket.write(request('late'));
  await ended;
  await closing;
  // The second answer follows the first body on the wire.
  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
  t.same(statuses, [200, 503], 'the request in flight answered, the late one refused');
  const [head, answer] = received.slice(received.lastIndexOf('HTTP/1.1')).split('\r\n\r\n');
  t.match(head, /^connection: close\r?$/im, 'the connection closed after it');
  t.match(head, /^retry-after: 1\r?$/im, 'to be sent again at once');
  t.match(head, /^x-request-id: late\r?$/im, 'with its request id');
  t.same(JSON.parse(answer), { error: { message: 'The gateway is shutting down; send the request again (another replica will take it).', type: 'service_unavailable', param: null, code: 'shutting_down' } }, 'in the OpenAI shape');
  t.equal(fake.received.filter((received) => received.path === '/v1/chat/completions').length, 1, 'the late one never reached the upstream');
});
