// The soak: the gateway as a real process under steady mixed load (routing new prompts, chats, streamed
// chats), the registry changed every few seconds through the admin API, Redis restarted once; memory
// must level off and nothing may be lost. `npm test` runs 15 s of it; `npm run test:faults`
// (LORAUTER_FAULTS=full) 10 minutes, and with LORAUTER_SOAK_PLOT=FILE draws RSS and heap over time.
import t from 'tap';
import autocannon from 'autocannon';
import { writeFileSync } from 'node:fs';
import { startDemoStack } from './helpers/gateway-process.js';
import { soakPlot, type SoakSample } from './helpers/soak-plot.js';

const FULL = process.env.LORAUTER_FAULTS === 'full';
const SECONDS = FULL ? 600 : 15;
const RATE = FULL ? 100 : 60;
const ADMIN_EVERY_MS = FULL ? 3000 : 1000;
const SAMPLE_EVERY_MS = FULL ? 2000 : 500;
const ADMIN = 'soak-admin-key-1';
const MB = 2 ** 20;

const { adapters, redis, gateway, stop } = await startDemoStack(ADMIN);
t.teardown(stop);

t.test(`soak: ${SECONDS} s at ${RATE} req/s of routing, chats and streams, the registry changed every ${ADMIN_EVERY_MS} ms, Redis restarted once`, async (t) => {
  const amount = SECONDS * RATE;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  const samples: SoakSample[] = [];
  const events: { seconds: number; label: string }[] = [];
  const adminFailures: string[] = [];
  let adminChanges = 0;
  let loadDone = false;
  const redisOutage = { stopped: false, restarted: false };

  const sampling = (async () => {
    while (!loadDone) {
      const { rss, heap, loopP99Ms } = await gateway.memory();
      samples.push({ seconds: elapsed(), rssMb: rss / MB, heapMb: heap / MB, loopP99Ms });
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
    }
  })();

  // A new task every few seconds, the one three changes older deleted: the registry keeps changing, not growing.
  // While Redis is down the registry refuses writes (503: a change it cannot share with the other replicas);
  // the change is tried again, as a client that reads the 503 would.
  const refusedInOutage: number[] = [];
  const redisDown = () => redisOutage.stopped && !redisBack;
  let redisBack = false;
  const admin = (async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` };
    const send = async (method: 'PUT' | 'DELETE', id: string, body?: unknown) => {
      for (;;) {
        const outage = redisDown();
        const response = await fetch(`${gateway.url}/v1/tasks/${id}`, { method, headers: body ? headers : { authorization: headers.authorization }, body: body ? JSON.stringify(body) : undefined });
        const text = await response.text();
        if (response.ok) return;
        if (response.status === 503 && (outage || redisDown()) && text.includes('registry_unavailable')) refusedInOutage.push(elapsed());
        else return void adminFailures.push(`${method} ${id}: ${response.status} ${text}`);
        await new Promise((resolve) => setTimeout(resolve, ADMIN_EVERY_MS));
      }
    };
    for (let change = 0; !loadDone; change++) {
      const examples = [`soak example ${change}: classify the tone of this message`, `another soak prompt ${change} about tone`];
      await send('PUT', `soak-${change}`, { examples, adapters: { [adapters[change % adapters.length]]: 1 } });
      if (change >= 3) await send('DELETE', `soak-${change - 3}`);
      adminChanges++;
      await new Promise((resolve) => setTimeout(resolve, ADMIN_EVERY_MS));
    }
  })();

  let prompt = 0;
  let responses = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: gateway.url,
        connections: 16,
        amount,
        overallRate: RATE,
        timeout: 10,
        headers: { 'content-type': 'application/json' },
        requests: [
          { method: 'POST', path: '/v1/route', setupRequest: (req) => ({ ...req, body: JSON.stringify({ input: `never seen prompt ${prompt++}: translate this sentence about the weather` }) }) },
          { method: 'POST', path: '/v1/chat/completions', setupRequest: (req) => ({ ...req, body: JSON.stringify({ model: 'lorauter', messages: [{ role: 'user', content: `Is review ${prompt++} positive or negative? great film` }] }) }) },
          { method: 'POST', path: '/v1/chat/completions', body: JSON.stringify({ model: 'lorauter', stream: true, messages: [{ role: 'user', content: 'Summarize this article: the council voted' }] }) },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('response', () => {
      responses++;
      if (!redisOutage.stopped && responses >= amount * 0.4) {
        redisOutage.stopped = true;
        events.push({ seconds: elapsed(), label: 'Redis stopped' });
        void redis.stop();
      }
      if (redisOutage.stopped && !redisOutage.restarted && responses >= amount * 0.5) {
        redisOutage.restarted = true;
        events.push({ seconds: elapsed(), label: 'restarted' });
        void redis.restart().then(async () => {
          // Back once the gateway's own connection is: its readiness says so.
          const redisUp = async () => ((await (await fetch(`${gateway.url}/readyz`)).json()) as { redis: string }).redis === 'up';
          for (let i = 0; i < 200 && !(await redisUp()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
          redisBack = true;
        });
      }
    });
  });
  loadDone = true;
  await Promise.all([sampling, admin]);

  const window = (from: number, to: number) => samples.filter((s) => s.seconds >= from * SECONDS && s.seconds < to * SECONDS);
  const early = window(0.2, 0.5);
  const late = window(0.7, 1.01);
  const floor = (items: SoakSample[]) => Math.min(...items.map((s) => s.heapMb));
  const peak = (items: SoakSample[]) => Math.max(...items.map((s) => s.rssMb));
  const loop = samples.map((s) => s.loopP99Ms).sort((a, b) => a - b);
  const summary = {
    requests: amount,
    answered: responses,
    'req/s': Math.round(result.requests.average),
    'latency p99 ms': result.latency.p99,
    'admin changes': adminChanges,
    'heap floor MB (20-50% / 70-100%)': [floor(early), floor(late)].map(Math.round),
    'RSS peak MB (20-50% / 70-100%)': [peak(early), peak(late)].map(Math.round),
    'event loop p99 ms (median / max of samples)': [loop[loop.length >> 1], loop[loop.length - 1]].map((x) => Math.round(x * 10) / 10),
  };
  t.comment(JSON.stringify(summary));
  if (process.env.LORAUTER_SOAK_PLOT) {
    const title = `${SECONDS / 60} minutes at ${RATE} req/s (route, chat, stream), a registry change every ${ADMIN_EVERY_MS / 1000} s, Redis restarted`;
    writeFileSync(process.env.LORAUTER_SOAK_PLOT, soakPlot(samples, events, title));
  }

  t.equal(result.errors, 0, 'no connection errors');
  t.equal(result.timeouts, 0, 'no request timed out');
  t.equal(result.non2xx, 0, 'every answer a success (the upstream does not fail here; Redis going away must not show)');
  t.equal(responses, amount, 'every request answered');
  t.ok(redisOutage.stopped && redisOutage.restarted, 'Redis was stopped and restarted during the load');
  t.same(adminFailures, [], 'every registry change accepted, or refused with 503 only while Redis was away');
  t.comment(`${refusedInOutage.length} registry changes refused while Redis was away, then made`);
  t.ok(adminChanges >= SECONDS * (1000 / ADMIN_EVERY_MS) * 0.5, `${adminChanges} registry changes`);
  t.equal(gateway.exitCode(), undefined, 'the gateway is still running');
  t.ok(early.length >= 3 && late.length >= 3, `${samples.length} memory samples`);
  t.ok(floor(late) - floor(early) < 24, `the heap's floor levels off: ${floor(early).toFixed(0)} → ${floor(late).toFixed(0)} MB`);
  t.ok(peak(late) - peak(early) < 64, `RSS levels off: ${peak(early).toFixed(0)} → ${peak(late).toFixed(0)} MB`);
  t.ok(loop[loop.length >> 1] < 100, `event loop p99 (median of samples) ${loop[loop.length >> 1].toFixed(1)} ms`);

  const tasks = (await (await fetch(`${gateway.url}/v1/tasks`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { data: { id: string }[] };
  const soakTasks = tasks.data.map((task) => task.id).filter((id) => id.startsWith('soak-'));
  t.same(soakTasks.sort(), Array.from({ length: 3 }, (_, i) => `soak-${adminChanges - 3 + i}`).sort(), 'the registry holds the last three changes, and no more');
  t.same(tasks.data.map((task) => task.id).filter((id) => !id.startsWith('soak-')).sort(), [...adapters].sort(), 'and every task it started with (a Redis that lost its data was re-seeded, not overwritten)');
});
