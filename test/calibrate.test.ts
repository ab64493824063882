import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { halvingSchedule, scheduleCost, successiveHalving } from '../src/calibration/halving.js';
import { bleuScore, exactMatch, metricFor, normalizeAnswer, rougeLScore } from '../src/calibration/metrics.js';
import { parseRegistry } from '../src/registry/parse.js';
import { bestAdapterOf } from '../src/registry/types.js';
import { startFakeLlamaCpp } from './fakes/llamacpp.js';
import { startFakeLorax } from './fakes/lorax.js';
import { startFakeVllm } from './fakes/vllm.js';
import type { Received } from './fakes/server.js';
import { listenGateway } from './helpers/gateway.js';
import { cli, plantedAnswer, plantedRegistry } from './helpers/calibration.js';

t.test('metrics against hand-computed values', async (t) => {
  t.equal(normalizeAnswer('  The Answer:  "Positive"! '), 'answer positive');
  t.equal(exactMatch('Positive.', 'positive'), 1);
  t.equal(exactMatch('an apple', 'apple'), 1, 'articles do not count');
  t.equal(exactMatch('negative', 'positive'), 0);
  // LCS of "the cat sat on the mat" and "the cat is on the mat" is 5 tokens: P = R = 5/6.
  t.ok(Math.abs(rougeLScore('the cat sat on the mat', 'the cat is on the mat') - 5 / 6) < 1e-9);
  t.equal(rougeLScore('completely different words', 'nothing shared here'), 0);
  t.equal(bleuScore('the cat is on the mat', 'the cat is on the mat'), 1);
  // Candidate "the cat" against "the cat is on the mat": p1 = 1, p2 = (1+1)/(1+1), p3 = p4 = (0+1)/(0+1);
  // brevity penalty exp(1 - 6/2).
  t.ok(Math.abs(bleuScore('the cat', 'the cat is on the mat') - Math.exp(1 - 3)) < 1e-9);
  // "the cat sat on the mat" vs "the cat is on the mat": p1 = 5/6, p2 = (3+1)/(5+1), p3 = (1+1)/(4+1), p4 = (0+1)/(3+1).
  const expected = Math.exp((Math.log(5 / 6) + Math.log(4 / 6) + Math.log(2 / 5) + Math.log(1 / 4)) / 4);
  t.ok(Math.abs(bleuScore('the cat sat on the mat', 'the cat is on the mat') - expected) < 1e-9);
  t.equal(bleuScore('dog', 'the cat'), 0, 'no unigram in common');

  t.equal(metricFor({ id: 'wmt16_translate_deen', targets: ['Where is the station?'] }), 'bleu');
  t.equal(metricFor({ id: 'x', domain: 'translation', targets: ['a'] }), 'bleu');
  t.equal(metricFor({ id: 'sst2', targets: ['positive', 'negative', 'positive'] }), 'exact');
  t.equal(metricFor({ id: 'cnn', targets: ['A long summary of the article with many words in it.'] }), 'rouge_l');
  t.equal(metricFor({ id: 'sst2', metric: 'rouge_l', targets: ['positive'] }), 'rouge_l', 'metric: overrides');
});

t.test('successive halving schedule: every candidate on a few examples, the better half on twice as many, within the budget', async (t) => {
  t.same(halvingSchedule(8, 16, 64), [
    { candidates: 8, from: 0, to: 4 },
    { candidates: 4, from: 4, to: 8 },
    { candidates: 2, from: 8, to: 16 },
  ]);
  t.equal(scheduleCost(halvingSchedule(8, 16, 64)), 64);
  t.same(halvingSchedule(8, 16, 63), [
    { candidates: 8, from: 0, to: 3 },
    { candidates: 4, from: 3, to: 6 },
    { candidates: 2, from: 6, to: 12 },
  ], 'one call less: a smaller first round');
  t.same(halvingSchedule(5, 10, 1000).map((round) => round.candidates), [5, 3, 2], 'odd counts round up');
  t.same(halvingSchedule(8, 16, 10), [{ candidates: 8, from: 0, to: 1 }], 'a budget that runs out stops the rounds');
  t.same(halvingSchedule(1, 16, 100), [], 'one candidate needs no calls');

  // Planted scores: adapter "c" is best; a per-example scorer counts its calls.
  const quality: Record<string, number> = { a: 0.2, b: 0.4, c: 0.9, d: 0.1 };
  let calls = 0;
  const result = await successiveHalving(['a', 'b', 'c', 'd'], halvingSchedule(4, 8, 16), 'a', async (adapter, example) => {
    calls++;
    return (example * 0.37) % 1 < quality[adapter] ? 1 : 0;
  });
  t.equal(result.best, 'c');
  t.equal(calls, scheduleCost(halvingSchedule(4, 8, 16)));
  t.same(result.finalists.map((tally) => tally.adapter), ['c', 'b']);
  // Ties go to the task's own adapter.
  const tie = await successiveHalving(['x', 'own', 'y'], [{ candidates: 3, from: 0, to: 2 }], 'own', async () => 1);
  t.equal(tie.best, 'own');
});

t.test('lorauter calibrate against vLLM with planted accuracies: confidence bounds find the best adapters with at most half the calls, resume, apply', async (t) => {
  const planted = plantedRegistry(20, 8, 16);
  const vllm = await startFakeVllm({ baseModel: 'base', staticAdapters: planted.adapterIds });
  t.teardown(() => vllm.stop());
  vllm.behaviour.words = (request: Received, servedBy: string) => [plantedAnswer(planted, request.body.messages[0].content, servedBy)];
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  const env = { LORAUTER_UPSTREAM: 'vllm', LORAUTER_UPSTREAM_URL: vllm.url };
  const out = join(dir, 'calibrated.yaml');
  // The candidates: the planted adapters (the registry also knows each task's own id, which this server does not serve).
  const adapters = ['--adapters', planted.adapterIds.join(',')];
  const chats = () => vllm.received.filter((request) => request.path === '/v1/chat/completions');

  const { stdout } = await cli(env, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--matrix', join(dir, 'matrix.csv'), '--concurrency', '8', ...adapters);
  const full = 20 * 8 * 16;
  const boundsCalls = chats().length;
  t.ok(boundsCalls <= full / 2, `bounds used ${boundsCalls} upstream calls, full matrix ${full}`);
  t.match(stdout, new RegExp(`${boundsCalls} upstream calls, ${((100 * boundsCalls) / full).toFixed(1)}% of the ${full}`));
  t.ok(chats().every((request) => request.body.temperature === 0), 'greedy answers');
  t.ok(chats().every((request) => planted.adapterIds.includes(request.body.model)), 'one adapter a call, by name');
  const calibrated = parseRegistry(readFileSync(out, 'utf8'), out);
  const found = calibrated.tasks.filter((task) => bestAdapterOf(task) === planted.best.get(task.id)).length;
  t.ok(found >= 18, `planted best adapter found for ${found}/20 tasks`);
  t.same(calibrated.tasks[0].examples, (planted.document.tasks[0] as { examples: string[] }).examples, 'the registry keeps its examples');

  const csv = readFileSync(join(dir, 'matrix.csv'), 'utf8').trim().split('\n');
  t.equal(csv.length, 21);
  t.same(csv[0].split(',').slice(0, 4), ['task', 'metric', 'best', 'lora-0']);
  t.equal(csv[1].split(',')[1], 'exact');
  const svg = readFileSync(join(dir, 'matrix.svg'), 'utf8');
  t.match(svg, /^<svg /);
  t.equal((svg.match(/<rect x=/g) ?? []).length, 20 * 8, 'a cell per task and adapter');
  // Each task's margin over its runner-up, in the CSV and beside its row of the heat map.
  const header = csv[0].split(',');
  const row = csv[1].split(',');
  const [first, second] = Object.values(calibrated.tasks[0].adapterScores).sort((a, b) => b - a);
  t.equal(Number(row[header.indexOf('margin')]), Number((first - second).toFixed(4)), 'the margin is the best score less the runner-up\'s');
  t.match(svg, new RegExp(`\\+${(first - second).toFixed(3)} over ${row[header.indexOf('runner_up')]}`), 'and the heat map says it');
  t.ok(existsSync(`${out}.results.jsonl`));

  // A rerun resumes: no call is made twice.
  const { stdout: again } = await cli(env, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, ...adapters);
  t.equal(chats().length, boundsCalls, 'no new upstream calls');
  t.match(again, new RegExp(`0 upstream calls \\+ ${boundsCalls} from an earlier run`));

  // An interrupted run (results cut short, one line half-written) makes only the missing calls.
  const lines = readFileSync(`${out}.results.jsonl`, 'utf8').trim().split('\n');
  writeFileSync(`${out}.results.jsonl`, `${lines.slice(0, 100).join('\n')}\n${lines[100].slice(0, 10)}`);
  await cli(env, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, ...adapters);
  t.equal(chats().length, boundsCalls + (boundsCalls - 100), 'only the lost calls again');

  // The full matrix for comparison.
  const before = chats().length;
  await cli(env, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'full.yaml'), '--strategy', 'full', '--concurrency', '8', ...adapters);
  t.equal(chats().length - before, full, 'full: every adapter on every example');
  const fullRegistry = parseRegistry(readFileSync(join(dir, 'full.yaml'), 'utf8'), 'full.yaml');
  t.equal(Object.keys(fullRegistry.tasks[0].adapterScores).length, 8, 'full: a score for every adapter');

  // --apply pushes the scores into a running gateway through its admin API.
  // The gateway runs on a copy of the task file (it writes admin changes back to its file).
  writeFileSync(join(dir, 'gateway.yaml'), readFileSync(join(dir, 'tasks.yaml')));
  const gateway = await listenGateway({ adminApiKey: 'admin-key-for-tests', tasks: join(dir, 'gateway.yaml') });
  t.teardown(gateway.close);
  // Someone changed task-0's examples in the running gateway: --apply sets the scores and keeps that change.
  const admin = { authorization: 'Bearer admin-key-for-tests' };
  t.equal((await gateway.app.inject({ method: 'PUT', url: '/v1/tasks/task-0', headers: admin, payload: { examples: ['an example added in the gateway'] } })).statusCode, 200);
  await cli({ ...env, LORAUTER_ADMIN_API_KEY: 'admin-key-for-tests' }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--apply', gateway.url, ...adapters);
  const task0 = await gateway.app.inject({ method: 'GET', url: '/v1/tasks/task-0', headers: admin });
  t.same(task0.json().adapters, calibrated.tasks[0].adapterScores, 'the calibrated scores');
  t.same(task0.json().examples, ['an example added in the gateway'], 'the gateway\'s own change kept');
  const task1 = await gateway.app.inject({ method: 'GET', url: '/v1/tasks/task-1', headers: admin });
  t.same(task1.json().adapters, calibrated.tasks[1].adapterScores);
});

t.test('calibrate against llama.cpp: one adapter at scale 1 in "lora"', async (t) => {
  const planted = plantedRegistry(3, 3, 8);
  const llama = await startFakeLlamaCpp(planted.adapterIds.map((id) => `/models/${id}.gguf`));
  t.teardown(() => llama.stop());
  // The fake summarises the scales as lora:0=1,1=0,2=0: the adapter at scale 1 answered.
  llama.behaviour.words = (request: Received, servedBy: string) => {
    const scales = servedBy.replace('lora:', '').split(',').map((pair) => Number(pair.split('=')[1]));
    if (scales.filter((scale) => scale === 1).length !== 1 || scales.some((scale) => scale !== 0 && scale !== 1)) return ['not one adapter'];
    return [plantedAnswer(planted, request.body.messages[0].content, planted.adapterIds[scales.indexOf(1)])];
  };
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  const out = join(dir, 'out.yaml');
  await cli({ LORAUTER_UPSTREAM: 'llamacpp', LORAUTER_UPSTREAM_URL: llama.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--strategy', 'full', '--adapters', planted.adapterIds.join(','));
  const chats = llama.received.filter((request) => request.path === '/v1/chat/completions');
  t.equal(chats.length, 3 * 3 * 8);
  t.ok(chats.every((request) => request.body.lora.filter((entry: { scale: number }) => entry.scale === 1).length === 1));
  const calibrated = parseRegistry(readFileSync(out, 'utf8'), out);
  for (const task of calibrated.tasks) t.equal(bestAdapterOf(task), planted.best.get(task.id), task.id);
});

t.test('calibrate against LoRAX: the adapter by its path in `model`, as routed requests name it', async (t) => {
  const planted = plantedRegistry(3, 3, 6);
  const lorax = await startFakeLorax();
  t.teardown(() => lorax.stop());
  const pathOf = (id: string) => `/adapters/${id}`;
  lorax.behaviour.words = (request: Received, servedBy: string) => [plantedAnswer(planted, request.body.messages[0].content, servedBy.replace('/adapters/', ''))];
  const document = { ...planted.document, adapters: planted.adapterIds.map((id) => ({ id, path: pathOf(id) })) };
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(document) });
  const out = join(dir, 'out.yaml');
  await cli({ LORAUTER_UPSTREAM: 'lorax', LORAUTER_UPSTREAM_URL: lorax.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--strategy', 'full', '--adapters', planted.adapterIds.join(','));
  const chats = lorax.received.filter((request) => request.path === '/v1/chat/completions');
  t.equal(chats.length, 3 * 3 * 6);
  t.ok(chats.every((request) => planted.adapterIds.map(pathOf).includes(request.body.model)), 'model is the adapter path');
  const calibrated = parseRegistry(readFileSync(out, 'utf8'), out);
  for (const task of calibrated.tasks) t.equal(bestAdapterOf(task), planted.best.get(task.id), task.id);
});

t.test('--shortlist k: each task tries only the adapters of its k nearest tasks, and still finds the planted best', async (t) => {
  const topics = ['knitting yarn needles stitches', 'volcano lava eruption magma', 'violin concerto orchestra bow', 'tax invoice refund deduction'];
  const accuracy = new Map<string, number>();
  const best = new Map<string, string>();
  const targetOf = new Map<string, { task: string; target: string }>();
  const tasks = topics.flatMap((topic, c) =>
    [0, 1, 2].map((member) => {
      const id = `c${c}-t${member}`;
      const examples = Array.from({ length: 8 }, (_, i) => `Question ${i} for ${id}: ${topic} ${['explain', 'summarise', 'compare', 'list'][i % 4]} please`);
      const targets = examples.map((_, i) => `answer ${i % 3}`);
      examples.forEach((prompt, i) => targetOf.set(prompt, { task: id, target: targets[i] }));
      return { id, examples, targets, adapters: { [`lora-${id}`]: 0 } };
    }),
  );
  const adapterIds = tasks.map((task) => `lora-${task.id}`);
  for (const task of tasks) {
    const [cluster, member] = task.id.split('-');
    const planted = `lora-${cluster}-t${(Number(member.slice(1)) + 1) % 3}`;
    best.set(task.id, planted);
    for (const adapter of adapterIds) accuracy.set(`${task.id}/${adapter}`, adapter === planted ? 0.95 : 0.2);
  }
  const planted = { accuracy, targetOf, best, adapterIds, document: {} };
  const vllm = await startFakeVllm({ baseModel: 'base', staticAdapters: adapterIds });
  t.teardown(() => vllm.stop());
  vllm.behaviour.words = (request: Received, servedBy: string) => [plantedAnswer(planted as unknown as ReturnType<typeof plantedRegistry>, request.body.messages[0].content, servedBy)];
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify({ adapters: adapterIds.map((id) => ({ id })), tasks }) });
  const out = join(dir, 'out.yaml');
  const { stdout } = await cli({ LORAUTER_UPSTREAM: 'vllm', LORAUTER_UPSTREAM_URL: vllm.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--shortlist', '3', '--adapters', adapterIds.join(','));
  const chats = vllm.received.filter((request) => request.path === '/v1/chat/completions');
  const full = 12 * 12 * 8;
  t.ok(chats.length <= 12 * 3 * 8 / 2, `${chats.length} calls, full matrix ${full}`);
  t.match(stdout, /shortlist of the 3 nearest tasks' adapters/);
  for (const request of chats) {
    const { task } = targetOf.get(request.body.messages[0].content)!;
    if (!request.body.model.startsWith(`lora-${task.split('-')[0]}-`)) t.fail(`${task} tried ${request.body.model}, outside its cluster`);
  }
  const calibrated = parseRegistry(readFileSync(out, 'utf8'), out);
  const found = calibrated.tasks.filter((task) => bestAdapterOf(task) === best.get(task.id)).length;
  t.equal(found, 12, `planted best found for ${found}/12 tasks`);
});

t.test('calibrate fails clearly: no upstream, unknown adapters', async (t) => {
  const planted = plantedRegistry(1, 2, 2);
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  await t.rejects(cli({}, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'o.yaml')), /needs an upstream: set LORAUTER_UPSTREAM_URL/);
  await t.rejects(
    cli({ LORAUTER_UPSTREAM_URL: 'http://127.0.0.1:9' }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'o.yaml'), '--adapters', 'lora-0,nope'),
    /unknown adapter nope/,
  );
  // An adapter the server does not serve: stopped at the first refusal (no retries), the adapter named.
  const vllm = await startFakeVllm({ baseModel: 'base', staticAdapters: ['lora-0'] });
  t.teardown(() => vllm.stop());
  await t.rejects(
    cli({ LORAUTER_UPSTREAM_URL: vllm.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'o.yaml'), '--adapters', 'lora-0,lora-1', '--concurrency', '1'),
    /upstream answered 404 for adapter "lora-1".*after 1 try/s,
  );
  t.equal(vllm.received.filter((request) => request.body?.model === 'lora-1').length, 1, 'asked once');
});

t.test('hub scale (20 tasks × 300 candidates, 20 examples): confidence bounds find the planted best in a fifth of the calls', async (t) => {
  const { calibrate } = await import('../src/calibration/calibrate.js');
  const { PLANTED_SHAPES, plantedMatrix } = await import('./helpers/planted-matrix.js');
  const { AnswerTable } = await import('../src/calibration/results-file.js');
  for (const [budget, needed] of [[1200, 19], [undefined, 20]] as const) {
    const planted = plantedMatrix(PLANTED_SHAPES[0]);
    const report = await calibrate(planted.registry, { strategy: 'bounds', budget, concurrency: 16, ask: planted.ask, results: new AnswerTable() });
    const found = report.tasks.filter((task) => task.best === planted.best.get(task.task)).length;
    const share = planted.calls() / planted.fullMatrixCalls;
    t.ok(found >= needed, `budget ${budget ?? 'default (half a row)'}: planted best found for ${found}/20 tasks`);
    t.ok(report.tasks.every((task) => task.tallies.reduce((sum, tally) => sum + tally.count, 0) <= (budget ?? 3000)), 'no task over its budget');
    t.ok(share <= 0.2, `${planted.calls()} calls, ${(100 * share).toFixed(1)}% of the full matrix`);
  }
});

t.test('confidence bounds: the budget is never exceeded, a bad first answer does not lose the best, ties get further examples, then the own adapter', async (t) => {
  const { bestByBounds } = await import('../src/calibration/bounds.js');
  const candidates = Array.from({ length: 40 }, (_, i) => `a${String(i).padStart(2, '0')}`);
  // a07 is right 90% of the time but wrong on its first example; the others right on example 0 only, then 10%.
  const answer = (adapter: string, example: number) => (adapter === 'a07' ? (example === 0 ? 0 : (example * 0.37) % 1 < 0.9 ? 1 : 0) : example === 0 ? 1 : (example * 0.61 + adapter.charCodeAt(2) * 0.07) % 1 < 0.1 ? 1 : 0);
  for (const budget of [10, 39, 40, 41, 100, 400]) {
    let calls = 0;
    const result = await bestByBounds(candidates, { budget, examples: 20 }, 'a00', async (adapter, example) => (calls++, answer(adapter, example)));
    t.ok(calls <= budget, `budget ${budget}: ${calls} calls`);
    if (budget >= 400) t.equal(result.best, 'a07', 'found although its first answer was wrong');
  }
  let calls = 0;
  const tie = await bestByBounds(['x', 'own', 'y'], { budget: 100, examples: 6 }, 'own', async () => (calls++, 1));
  t.equal(tie.best, 'own', 'a tie that more examples cannot break goes to the own adapter');
  t.equal(calls, 18, 'the tied leaders were given every example first');
});
