import t from 'tap';
import { BuiltinEncoder, DEFAULT_BUILTIN_ENCODER_OPTIONS } from '../src/encoders/builtin/builtin-encoder.js';
import { ThreadedBuiltinEncoder, type EncoderThreadsOptions } from '../src/encoders/builtin/threaded-encoder.js';
import { encoderWorkers, prepareEncoder } from '../src/encoders/kinds.js';
import { loadConfig } from '../src/config/load.js';
import { loadRegistry } from '../src/registry/load.js';
import { FLAN_TASKS, startGateway } from './helpers/gateway.js';
import { until } from './helpers/wait.js';

const registry = loadRegistry(FLAN_TASKS);
const examples = registry.tasks.slice(0, 12).map((task) => task.examples.slice(0, 16));
const prompts = [
  ...registry.tasks.flatMap((task) => task.examples.slice(16)),
  'Übersetze ins Englische: Wo ist der Bahnhof? 🚉',
  '日本語の文を英語に翻訳してください：駅はどこですか',
  'zzzzqqq',
];
const options = { ...DEFAULT_BUILTIN_ENCODER_OPTIONS };
const fixture = (name: string) => new URL(`./fixtures/encoder-threads/${name}`, import.meta.url);

function threaded(settings: Partial<EncoderThreadsOptions> = {}) {
  const local = BuiltinEncoder.fit(examples.map((group) => ({ examples: group })), options);
  const problems: string[] = [];
  const encoded = { worker: 0, event_loop: 0 };
  const encoder = new ThreadedBuiltinEncoder(local, examples, options, {
    threads: 1,
    timeoutMs: 5000,
    onProblem: (message) => problems.push(message),
    onEncoded: (thread, count) => (encoded[thread] += count),
    ...settings,
  });
  return { local, encoder, problems, encoded };
}

/** The encoder's clock, moved only by the test: timeouts and the idle rule without wall-clock bounds. */
function fakeClock() {
  let now = 0;
  return { clock: () => now, advance: (ms: number) => void (now += ms), get now() { return now; } };
}

/** `count` more passes of the encoder's watchdog: what a late prompt needs to be noticed. */
const watchdogPasses = (encoder: ThreadedBuiltinEncoder, count: number) => {
  const target = encoder.stats.watchdogPasses + count;
  return until(() => encoder.stats.watchdogPasses >= target, `${count} watchdog passes`, { everyMs: 1 });
};

const bits = (vectors: Float32Array[]) => vectors.map((vector) => Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('hex'));

t.test('vectors from the threads are bit for bit those of the local fit, wherever they were encoded', async (t) => {
  const { local, encoder, problems, encoded } = threaded({ threads: 2 });
  t.teardown(() => encoder.close());
  await encoder.started();
  t.equal(encoder.readyThreads, 2);
  await encoder.encode(prompts.slice(0, 5), 'example');
  t.same(encoded, { worker: 0, event_loop: 0 }, 'task examples are not counted as prompts');
  t.equal(encoder.fingerprint, local.fingerprint);
  const expected = bits(prompts.map((prompt) => local.encodeOne(prompt)));
  const one = await Promise.all(prompts.map((prompt) => encoder.encode([prompt])));
  t.same(bits(one.flat()), expected, 'one prompt a call, all in flight at once');
  t.ok(encoder.stats.threadTexts > 0, `threads encoded ${encoder.stats.threadTexts} of ${prompts.length}`);
  t.same(encoded, { worker: encoder.stats.threadTexts, event_loop: prompts.length - encoder.stats.threadTexts }, 'every prompt counted once, where it was encoded');
  const many = await encoder.encode(prompts);
  t.same(bits(many), expected, 'many prompts in one call');
  const lone = await encoder.encode([prompts[0]]);
  t.same(bits(lone), expected.slice(0, 1));
  t.same(problems, []);
});

t.test('idle threads take the prompts; the event loop encodes what stays queued, only in turns without other work', async (t) => {
  const time = fakeClock();
  // No timeout here: only the idle rule decides where prompts go.
  const { local, encoder, encoded } = threaded({ timeoutMs: 600_000, clock: time.clock });
  t.teardown(() => encoder.close());
  await encoder.started();
  const burst = async (from: number, count: number) => {
    const before = { ...encoded };
    const vectors = await Promise.all(prompts.slice(from, from + count).map((prompt) => encoder.encode([prompt])));
    t.same(bits(vectors.flat()), bits(prompts.slice(from, from + count).map((prompt) => local.encodeOne(prompt))));
    return { worker: encoded.worker - before.worker, event_loop: encoded.event_loop - before.event_loop };
  };
  const one = { worker: 0, event_loop: 0 };
  for (let i = 0; i < 20; i++) {
    const counts = await burst(i, 1);
    one.worker += counts.worker;
    one.event_loop += counts.event_loop;
  }
  t.same(one, { worker: 20, event_loop: 0 }, 'one prompt at a time, the loop idle: each waits for the idle thread to wake and take it');
  const idle = await burst(20, 100);
  // The event loop helps only in turns without other work, and collecting the thread's results is work: how many
  // it takes depends on the thread's speed (the hanging-thread test below checks that it does take them).
  t.equal(idle.worker + idle.event_loop, 100, `100 queued, the loop otherwise idle: the thread took ${idle.worker}, the event loop ${idle.event_loop}`);
  // Every turn of the event loop takes 0.5 ms by the encoder's clock, as when it serves requests.
  let serving = true;
  const serve = () => {
    time.advance(0.5);
    if (serving) setImmediate(serve);
  };
  setImmediate(serve);
  // A turn for the last burst's idle check to see nothing queued and stop: a check left over from an idle
  // turn would rightly take one prompt of the next burst.
  for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
  const busy = await burst(130, 100);
  serving = false;
  t.same(busy, { worker: 100, event_loop: 0 }, 'every turn busy: all 100 wait for the thread');
});

t.test('task examples are encoded on the calling thread', async (t) => {
  const { local, encoder } = threaded();
  t.teardown(() => encoder.close());
  await encoder.started();
  const vectors = await encoder.encode(prompts.slice(0, 10), 'example');
  t.equal(encoder.stats.threadTexts, 0, 'none on the thread');
  t.same(bits(vectors), bits(prompts.slice(0, 10).map((prompt) => local.encodeOne(prompt))));
});

t.test('before its threads are ready, and after close, prompts are encoded here', async (t) => {
  const { local, encoder } = threaded();
  t.equal(encoder.readyThreads, 0, 'still fitting');
  t.same(bits(await encoder.encode(prompts.slice(0, 3))), bits(prompts.slice(0, 3).map((prompt) => local.encodeOne(prompt))));
  t.equal(encoder.stats.threadTexts, 0);
  await encoder.started();
  await encoder.close();
  t.equal(encoder.readyThreads, 0);
  t.same(bits(await encoder.encode([prompts[5]])), bits([local.encodeOne(prompts[5])]));
  t.equal(encoder.stats.threadTexts, 0, 'closed: nothing queued');
});

t.test('close answers every prompt still queued, or held by a thread', async (t) => {
  const expected = bits(prompts.slice(0, 40).map((prompt) => BuiltinEncoder.fit(examples.map((group) => ({ examples: group })), options).encodeOne(prompt)));
  // A thread that takes nothing: every prompt stays queued (the loop leaves prompts to idle threads).
  const silent = threaded({ script: fixture('silent-thread.ts'), clock: fakeClock().clock });
  await silent.encoder.started();
  const queued = Promise.all(prompts.slice(0, 40).map((prompt) => silent.encoder.encode([prompt])));
  await watchdogPasses(silent.encoder, 2);
  t.equal(silent.encoder.stats.localTexts, 0, 'all 40 still queued');
  await silent.encoder.close();
  t.same(bits((await queued).flat()), expected, 'queued at close: answered');
  // A thread that takes one and never answers: the idle loop encodes the other 39, close the one it holds.
  const hanging = threaded({ script: fixture('hanging-thread.ts'), clock: fakeClock().clock });
  await hanging.encoder.started();
  const held = Promise.all(prompts.slice(0, 40).map((prompt) => hanging.encoder.encode([prompt])));
  await until(() => hanging.encoder.stats.localTexts === 39, 'the 39 prompts the thread did not take', { everyMs: 1 });
  await hanging.encoder.close();
  t.same(bits((await held).flat()), expected, 'held by a thread at close: answered');
  t.equal(hanging.encoder.stats.localTexts, 40);
});

t.test('a thread that holds a prompt too long: the others are encoded here at once, it after the timeout, the thread replaced', async (t) => {
  const time = fakeClock();
  const { local, encoder, problems, encoded } = threaded({ timeoutMs: 200, script: fixture('hanging-thread.ts'), clock: time.clock });
  t.teardown(() => encoder.close());
  await encoder.started();
  const answeredAt: number[] = [];
  const all = Promise.all(
    prompts.slice(0, 6).map(async (prompt) => {
      const vector = await encoder.encode([prompt]);
      answeredAt.push(time.now);
      return vector;
    }),
  );
  await until(() => answeredAt.length === 5, 'the five prompts the thread did not take', { everyMs: 1 });
  t.same(answeredAt, [0, 0, 0, 0, 0], 'the 5 the thread did not take: encoded on the idle event loop, before any timeout');
  await watchdogPasses(encoder, 2);
  time.advance(199);
  await watchdogPasses(encoder, 2);
  t.equal(answeredAt.length, 5, 'the one it holds: still within the timeout');
  t.same(problems, []);
  time.advance(2);
  const vectors = await all;
  t.same(answeredAt[5], 201, 'the one it held: once the timeout had passed');
  t.same(bits(vectors.flat()), bits(prompts.slice(0, 6).map((prompt) => local.encodeOne(prompt))));
  t.same(encoded, { worker: 0, event_loop: 6 });
  t.match(problems, [/did not answer within 200 ms/]);
  await until(() => encoder.stats.spawned === 2, 'the replacement thread', { everyMs: 1 });
  await encoder.started();
  t.equal(encoder.readyThreads, 1, 'replaced');
});

t.test('a thread that exits holding a prompt: the prompt is encoded here, the thread replaced', async (t) => {
  const { local, encoder, problems } = threaded({ script: fixture('crashing-thread.ts') });
  t.teardown(() => encoder.close());
  await encoder.started();
  const vectors = await Promise.all(prompts.slice(0, 6).map((prompt) => encoder.encode([prompt])));
  t.same(bits(vectors.flat()), bits(prompts.slice(0, 6).map((prompt) => local.encodeOne(prompt))));
  t.match(problems, [/exited with code 3/]);
  await until(() => encoder.stats.spawned === 2, 'the replacement thread', { everyMs: 1 });
  await encoder.started();
  t.equal(encoder.readyThreads, 1, 'replaced');
});

t.test('a thread that fitted another encoder is never used', async (t) => {
  const { local, encoder, problems } = threaded({ script: fixture('other-fit-thread.ts') });
  t.teardown(() => encoder.close());
  await encoder.started();
  t.match(problems, [/fitted ngram-tfidf:0000000000000000, not ngram-tfidf:/]);
  t.equal(encoder.readyThreads, 0);
  t.same(bits(await encoder.encode(prompts.slice(0, 4))), bits(prompts.slice(0, 4).map((prompt) => local.encodeOne(prompt))));
  t.equal(encoder.stats.threadTexts, 0);
});

t.test('a prompt no thread takes within the timeout is encoded here, even while the event loop is busy', async (t) => {
  const time = fakeClock();
  const { local, encoder, problems, encoded } = threaded({ timeoutMs: 200, script: fixture('silent-thread.ts'), clock: time.clock });
  t.teardown(() => encoder.close());
  await encoder.started();
  // Every turn busy for 0.5 ms, by the wall clock (timers must still fire) and by the encoder's.
  let serving = true;
  const serve = () => {
    const until = performance.now() + 0.5;
    while (performance.now() < until);
    time.advance(0.5);
    if (serving) setImmediate(serve);
  };
  setImmediate(serve);
  const answeredAt: number[] = [];
  const vectors = await Promise.all(
    prompts.slice(0, 6).map(async (prompt) => {
      const vector = await encoder.encode([prompt]);
      answeredAt.push(time.now);
      return vector;
    }),
  );
  serving = false;
  t.same(bits(vectors.flat()), bits(prompts.slice(0, 6).map((prompt) => local.encodeOne(prompt))));
  t.ok(Math.min(...answeredAt) > 200, `answered once the timeout had passed (at ${Math.min(...answeredAt)} ms by the encoder's clock)`);
  t.same(encoded, { worker: 0, event_loop: 6 });
  t.same(problems, [], 'a thread that is merely slow to take prompts is not replaced');
});

t.test('more prompts than the shared queue holds, and texts longer than its text space, are all encoded', async (t) => {
  const { local, encoder, encoded } = threaded({ slots: 4, textUnits: 1500 });
  t.teardown(() => encoder.close());
  await encoder.started();
  const long = 'Translate to French: ' + 'the station is near the river. '.repeat(60);
  const odd = ['', 'a\ud800b: a lone surrogate', '\udfff', long];
  const all = [...prompts, ...odd, ...prompts.slice(0, 30)];
  const vectors = await Promise.all(all.map((prompt) => encoder.encode([prompt])));
  t.same(bits(vectors.flat()), bits(all.map((prompt) => local.encodeOne(prompt))), `${all.length} prompts through 4 slots and 1,500 units of text`);
  t.same(bits(await encoder.encode(all)), bits(all.map((prompt) => local.encodeOne(prompt))), 'the same in one call');
  t.ok(encoded.worker > 0, `the thread encoded ${encoded.worker}`);
  t.ok(long.length > 1500, 'the long text never fits: encoded on the event loop');
});

t.test('LORAUTER_ENCODER_WORKERS: threads for the serving encoder only', async (t) => {
  const settings = (env: Record<string, string>) => loadConfig({ env }).encoder;
  t.equal(encoderWorkers(settings({ LORAUTER_ENCODER_WORKERS: '0' })), 0);
  t.equal(encoderWorkers(settings({ LORAUTER_ENCODER_WORKERS: '3' })), 3);
  t.throws(() => settings({ LORAUTER_ENCODER_WORKERS: '-1' }), /workers/);
  const groups = examples.map((group) => ({ examples: group }));
  const none = await prepareEncoder(settings({ LORAUTER_ENCODER_WORKERS: '0' }));
  t.type(none.forServing!(groups), BuiltinEncoder, '0: the plain encoder');
  const two = await prepareEncoder(settings({ LORAUTER_ENCODER_WORKERS: '2' }));
  const serving = two.forServing!(groups) as ThreadedBuiltinEncoder;
  t.teardown(() => serving.close());
  t.type(serving, ThreadedBuiltinEncoder);
  t.type(two.forTasks(groups), BuiltinEncoder, 'fits for calibration stay plain');
  await serving.started();
  t.equal(serving.readyThreads, 2);
  t.equal(serving.fingerprint, two.forTasks(groups).fingerprint);
});

t.test('the gateway routes the same with and without encoder threads; a rebuilt router closes the old threads', async (t) => {
  const flan = { ...registry, tasks: registry.tasks.slice(0, 20).map((task) => ({ ...task, examples: task.examples.slice(0, 14) })) };
  const threadedGateway = await startGateway({ encoder: { workers: 1 } }, { registry: flan });
  t.teardown(() => threadedGateway.close());
  const plainGateway = await startGateway({ encoder: { workers: 0 } }, { registry: flan });
  t.teardown(() => plainGateway.close());
  const inner = (gateway: typeof threadedGateway) => gateway.gateway.router.encoder.inner;
  t.type(inner(plainGateway), BuiltinEncoder);
  const threads = inner(threadedGateway) as ThreadedBuiltinEncoder;
  t.type(threads, ThreadedBuiltinEncoder);
  await threads.started();
  const route = (gateway: typeof threadedGateway) =>
    Promise.all(prompts.slice(0, 80).map(async (input) => (await gateway.app.inject({ method: 'POST', url: '/v1/route', payload: { input } })).json()));
  const [withThreads, without] = await Promise.all([route(threadedGateway), route(plainGateway)]);
  const decisions = (bodies: Awaited<ReturnType<typeof route>>) => bodies.map((body) => ({ tasks: body.tasks, adapters: body.adapters, confidence: body.confidence, abstained: body.abstained }));
  t.same(decisions(withThreads), decisions(without), '80 concurrent prompts: the same tasks, similarities, weights and confidence');
  t.equal(withThreads[0].encoder, without[0].encoder, 'the same fingerprint');
  t.ok(threads.stats.threadTexts > 0, `${threads.stats.threadTexts} prompts encoded on the thread`);
  const metrics = (await threadedGateway.app.inject({ url: '/metrics' })).body;
  t.match(metrics, new RegExp(`lorauter_encoder_prompts_total\\{thread="worker"\\} ${threads.stats.threadTexts}\\b`), 'counted in /metrics');
  // The event loop encodes only what the thread leaves queued in idle turns: under load, possibly none.
  const onEventLoop = withThreads.filter((body) => body.cache === 'miss').length - threads.stats.threadTexts;
  if (onEventLoop > 0) t.match(metrics, new RegExp(`lorauter_encoder_prompts_total\\{thread="event_loop"\\} ${onEventLoop}\\b`), 'the rest counted as encoded on the event loop');
  else t.notMatch(metrics, /lorauter_encoder_prompts_total\{thread="event_loop"\} [1-9]/, 'none encoded on the event loop');
  t.match(metrics, /lorauter_encoder_thread_failures_total 0\b/);

  const live = threadedGateway.gateway;
  live.liveRouter.update({ registry: { ...flan, tasks: flan.tasks.slice(0, 19) }, version: live.liveRouter.version + 1 });
  await live.liveRouter.settled();
  const rebuilt = inner(threadedGateway) as ThreadedBuiltinEncoder;
  t.not(rebuilt, threads, 'the refitted encoder has threads of its own');
  t.equal(threads.readyThreads, 0, 'the old router\'s threads are closed');
  await rebuilt.started();
  t.equal(rebuilt.readyThreads, 1);
  await threadedGateway.gateway.close();
  t.equal(rebuilt.readyThreads, 0, 'closing the gateway closes the threads in service');
});
