// Calibration over a fleet: shards, replicas, Redis-shared answers (CLI processes against fake vLLM replicas).
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseRegistry } from '../src/registry/parse.js';
import { cli, entry, plantedRegistry, plantedReplicas } from './helpers/calibration.js';

t.test('a fleet: three shards against three replicas make each call once and merge into the registry one process writes; a shard killed half way resumes', async (t) => {
  const { spawn } = await import('node:child_process');
  const planted = plantedRegistry(12, 6, 8);
  const { fakes, chats } = await plantedReplicas(t, planted, 4);
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  const adapters = ['--adapters', planted.adapterIds.join(',')];
  const env = (fake: (typeof fakes)[number]) => ({ LORAUTER_UPSTREAM: 'vllm', LORAUTER_UPSTREAM_URL: fake.url });

  // One process, for reference.
  await cli(env(fakes[3]), 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'single.yaml'), ...adapters);
  const single = chats(fakes[3]);

  // Shard 1 killed after a few calls, then the three shards at once, each against its own replica.
  const out = join(dir, 'fleet.yaml');
  const killed = spawn(process.execPath, ['--import', 'tsx', entry, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--shard', '1/3', '--concurrency', '1', ...adapters], { env: { ...process.env, ...env(fakes[1]) }, stdio: 'ignore' });
  for (const deadline = Date.now() + 30_000; chats(fakes[1]) < 20 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
  killed.kill('SIGKILL');
  await new Promise((resolve) => killed.once('exit', resolve));
  const beforeRestart = chats(fakes[1]);
  const { stdout: status } = await cli({}, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--status', ...adapters);
  t.match(status, /fleet\.yaml: [0-3]\/12 tasks done, \d+ answers from 1 shard results files \([\d.]+% of the full matrix's 576\); at most \d+ calls left; ETA at most /, status);
  t.ok(beforeRestart >= 20 && beforeRestart < single / 3 + 20, `shard 1 killed after ${beforeRestart} calls`);
  const outputs = await Promise.all([0, 1, 2].map((i) => cli(env(fakes[i]), 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--shard', `${i}/3`, ...adapters)));
  t.match(outputs[1].stdout, /shard 1\/3: 4 tasks calibrated, \d+ upstream calls \+ \d+ from an earlier run/);
  const fleetCalls = chats(fakes[0]) + chats(fakes[1]) + chats(fakes[2]);
  // Lines cut short by the kill are asked again: at most one call a task that was in flight.
  t.ok(fleetCalls >= single && fleetCalls <= single + 4, `the fleet made ${fleetCalls} calls, one process ${single}: each call once`);
  t.notOk(existsSync(out), 'shards write only their results');

  t.match((await cli({}, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--status', ...adapters)).stdout, /12\/12 tasks done, \d+ answers from 3 shard results files .*; at most 0 calls left; done/);
  const merged = await cli({}, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--merge', ...adapters);
  t.match(merged.stdout, /merged the answers of 3 shard results files/);
  t.match(merged.stdout, /0 upstream calls \+ \d+ from an earlier run/);
  t.same(parseRegistry(readFileSync(out, 'utf8'), out), parseRegistry(readFileSync(join(dir, 'single.yaml'), 'utf8'), out), 'the registry one process writes');

  // A merge with a shard missing names what to do.
  const partial = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  await cli(env(fakes[0]), 'calibrate', '--tasks', join(partial, 'tasks.yaml'), '--out', join(partial, 'out.yaml'), '--shard', '0/2', ...adapters);
  await t.rejects(cli({}, 'calibrate', '--tasks', join(partial, 'tasks.yaml'), '--out', join(partial, 'out.yaml'), '--merge', ...adapters), /a shard has not finished/);
});

t.test('replicas: calls spread over every --upstream; a replica that is down costs nothing but its share moving to the others', async (t) => {
  const planted = plantedRegistry(6, 4, 8);
  const { fakes, chats } = await plantedReplicas(t, planted, 3);
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  const adapters = ['--adapters', planted.adapterIds.join(',')];
  const base = { LORAUTER_UPSTREAM: 'vllm', LORAUTER_UPSTREAM_CONNECT_TIMEOUT_MS: '500' };
  const urls = fakes.map((fake) => fake.url).join(',');
  await cli(base, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'a.yaml'), '--upstream', urls, ...adapters);
  const spread = fakes.map(chats);
  t.ok(spread.every((count) => count > 0), `every replica answered: ${spread.join(', ')}`);
  await fakes[2].stop();
  await cli(base, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'b.yaml'), '--upstream', urls, ...adapters);
  t.equal(chats(fakes[0]) + chats(fakes[1]) - spread[0] - spread[1], spread.reduce((a, b) => a + b), 'the same calls again, all answered by the two left');
  t.same(parseRegistry(readFileSync(join(dir, 'b.yaml'), 'utf8'), 'b.yaml'), parseRegistry(readFileSync(join(dir, 'a.yaml'), 'utf8'), 'b.yaml'), 'the same registry');
});

t.test('with REDIS_URL the shards share their answers in Redis, and the merge reads them there', async (t) => {
  const { RedisServer } = await import('./helpers/redis.js');
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const planted = plantedRegistry(6, 4, 8);
  const { fakes: [fake], chats: answeredBy } = await plantedReplicas(t, planted, 1);
  const chats = () => answeredBy(fake);
  const dir = t.testdir({ 'tasks.yaml': YAML.stringify(planted.document) });
  const adapters = ['--adapters', planted.adapterIds.join(',')];
  const upstream = { LORAUTER_UPSTREAM: 'vllm', LORAUTER_UPSTREAM_URL: fake.url };
  await cli(upstream, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', join(dir, 'single.yaml'), ...adapters);
  const single = chats();
  const out = join(dir, 'shared.yaml');
  const shards = await Promise.all([0, 1].map((i) => cli({ ...upstream, REDIS_URL: redis.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--shard', `${i}/2`, ...adapters)));
  t.match(shards[0].stdout, /answers in Redis \(lorauter:calibration:shared\.yaml:answers\)/);
  // Without a terminal (a Job's pod), progress comes as lines; the last one when the shard ends.
  t.match(shards[1].stderr, /shard 1\/2: \d+ of at most \d+ calls \(\d+\.\d%\), 3\/3 tasks done, [\d.]+ calls\/s, ETA at most 0 s/);
  t.equal(chats() - single, single, 'the shards made the calls one process makes, once');
  const { readdirSync } = await import('node:fs');
  t.same(readdirSync(dir).filter((name) => name.includes('shard')), [], 'no results files');
  const { stdout: status } = await cli({ REDIS_URL: redis.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--status', ...adapters);
  t.match(status, /6\/6 tasks done, \d+ answers from Redis \(lorauter:calibration:shared\.yaml:answers\) .*; at most 0 calls left; done/, '--status reads the same answers');
  const merged = await cli({ REDIS_URL: redis.url }, 'calibrate', '--tasks', join(dir, 'tasks.yaml'), '--out', out, '--merge', ...adapters);
  t.match(merged.stdout, /merged the answers in Redis/);
  t.same(parseRegistry(readFileSync(out, 'utf8'), out), parseRegistry(readFileSync(join(dir, 'single.yaml'), 'utf8'), out), 'the registry one process writes');
});
