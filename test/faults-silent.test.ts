// A silent upstream of every kind: it accepts connections and never answers (not even /health or
// llama.cpp's /lora-adapters). Every request must still be answered, 504 or 503 `upstream_busy`,
// within the queue timeout plus the headers timeout: the drivers' own lookups are single-flight,
// bounded and remembered when they fail, and their wait counts against the queue timeout.
// `npm test` runs a short form; LORAUTER_FAULTS=full the figures (1,000 chats, 2 s headers timeout).
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { FLAN_TASKS, listenGateway } from './helpers/gateway.js';

const FULL = process.env.LORAUTER_FAULTS === 'full';
const CHATS = FULL ? 1000 : 300;
const HEADERS_TIMEOUT_MS = FULL ? 2000 : 500;
const QUEUE_TIMEOUT_MS = FULL ? 5000 : 1000;
// Scheduling on a machine whose other core is busy: the bound is the configuration's, plus this.
const MARGIN_MS = 1500;

async function startSilentServer() {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const kind of ['llamacpp', 'vllm', 'sglang', 'lorax']) {
  t.test(`${kind}: ${CHATS} concurrent chats to a silent upstream all answered within queue + headers timeout`, async (t) => {
    const silent = await startSilentServer();
    const gw = await listenGateway({
      tasks: FLAN_TASKS,
      upstream: { url: silent.url, kind, baseModel: 'base', headersTimeoutMs: HEADERS_TIMEOUT_MS, connectTimeoutMs: HEADERS_TIMEOUT_MS, queueTimeoutMs: QUEUE_TIMEOUT_MS },
    });
    const client = new Agent({ connections: CHATS, headersTimeout: 60_000, bodyTimeout: 60_000 });
    t.teardown(async () => {
      await client.close();
      await gw.close();
      await silent.stop();
    });
    const body = JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: 'Translate to English: Guten Morgen, wie geht es dir?' }] });
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: CHATS }, async () => {
        const response = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: client });
        const json = (await response.body.json()) as { error?: { code?: string } };
        return { status: response.statusCode, code: json.error?.code, ms: performance.now() - started };
      }),
    );
    const statuses = new Map<string, number>();
    for (const answer of answers) statuses.set(`${answer.status} ${answer.code}`, (statuses.get(`${answer.status} ${answer.code}`) ?? 0) + 1);
    t.ok(answers.every((answer) => (answer.status === 504 && /timeout/.test(answer.code ?? '')) || (answer.status === 503 && answer.code === 'upstream_busy')), `504 timeouts or 503 upstream_busy only: ${JSON.stringify([...statuses])}`);
    const last = Math.max(...answers.map((answer) => answer.ms));
    t.ok(last <= QUEUE_TIMEOUT_MS + HEADERS_TIMEOUT_MS + MARGIN_MS, `the last answer after ${Math.round(last)} ms (queue ${QUEUE_TIMEOUT_MS} + headers ${HEADERS_TIMEOUT_MS} + ${MARGIN_MS})`);
  });
}
