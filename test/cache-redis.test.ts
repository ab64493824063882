import t from 'tap';
import { Redis } from 'ioredis';
import { embeddingKey } from '../src/cache/keys.js';
import { RedisServer } from './helpers/redis.js';
import { startGateway } from './helpers/gateway.js';

const redis = await RedisServer.start();
t.teardown(() => redis.stop());

const route = (app: Awaited<ReturnType<typeof startGateway>>['app'], input: string) =>
  app.inject({ method: 'POST', url: '/v1/route', payload: { input } });

t.test('embeddings are shared through Redis as Float32 bytes with a TTL', async (t) => {
  const first = await startGateway({ cache: { redisUrl: redis.url, ttlSeconds: 600, maxEntries: 100 } });
  const second = await startGateway({ cache: { redisUrl: redis.url, ttlSeconds: 600, maxEntries: 100 } });
  t.teardown(async () => {
    await first.close();
    await second.close();
  });
  const prompt = `Translate to English: Guten Abend ${Date.now()}`;
  const miss = await route(first.app, prompt);
  t.equal(miss.json().cache, 'miss');
  const repeated = await route(first.app, prompt);
  t.equal(repeated.json().cache, 'decision', 'a repeated request reuses the whole decision');
  const memory = await first.app.inject({ method: 'POST', url: '/v1/route', payload: { input: prompt, top_k: 2 } });
  t.equal(memory.json().cache, 'memory', 'other options reuse the embedding');

  const client = redis.client();
  t.teardown(() => client.quit());
  const key = `lorauter:emb:${embeddingKey(first.gateway.encoder.fingerprint, prompt)}`;
  let stored: Buffer | null = null;
  for (let i = 0; i < 50 && !stored; i++) {
    stored = await client.getBuffer(key);
    if (!stored) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(stored, 'written to redis');
  t.equal(stored!.byteLength, first.gateway.encoder.dimensions * 4, 'raw float32 bytes');
  const ttl = await client.ttl(key);
  t.ok(ttl > 500 && ttl <= 600, `ttl ${ttl}`);
  const [expected] = await first.gateway.encoder.encode([prompt]);
  const copy = new Float32Array(new Uint8Array(stored!).buffer);
  t.same(Array.from(copy), Array.from(expected), 'bytes decode to the encoder output');

  const fromRedis = await route(second.app, prompt);
  t.equal(fromRedis.json().cache, 'redis', 'second instance reads it from redis');
  t.same(fromRedis.json().adapters, miss.json().adapters, 'same decision');
});

t.test('misaligned buffers from ioredis decode correctly', async (t) => {
  const { bufferToFloat32 } = await import('../src/cache/keys.js');
  const source = new Float32Array([1.5, -2.25, 3.125]);
  const backing = Buffer.alloc(13);
  Buffer.from(source.buffer).copy(backing, 1);
  const misaligned = backing.subarray(1);
  t.same(Array.from(bufferToFloat32(misaligned, 3)!), [1.5, -2.25, 3.125]);
  t.equal(bufferToFloat32(misaligned, 4), undefined, 'wrong length is a miss, not garbage');
});

t.test('Redis stopped mid-run: routing still answers, failure logged once and counted, reconnects', async (t) => {
  const local = await RedisServer.start();
  t.teardown(() => local.stop());
  const gw = await startGateway({ cache: { redisUrl: local.url, redisTimeoutMs: 100, maxEntries: 0 } });
  t.teardown(() => gw.close());
  t.equal((await route(gw.app, 'warm up the connection')).statusCode, 200);
  await local.stop();
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const response = await route(gw.app, `Summarize this article number ${i}`);
    t.equal(response.statusCode, 200);
    t.equal(response.json().cache, 'miss');
  }
  t.ok(Date.now() - started < 5000, 'no request waits on the dead redis');
  const warnings = gw.logs.filter((line) => String(line.msg).includes('redis embedding cache unavailable'));
  t.equal(warnings.length, 1, 'logged once, not per request');
  const metrics = await (await gw.app.inject({ url: '/metrics' })).body;
  t.match(metrics, /lorauter_cache_errors_total\{operation="\w+"\} [1-9]/);
  t.match(metrics, /lorauter_redis_up 0/);
  t.equal((await gw.app.inject({ url: '/readyz' })).json().redis, 'down');

  await local.restart();
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    await new Promise((r) => setTimeout(r, 50));
    up = (await gw.app.inject({ url: '/readyz' })).json().redis === 'up';
  }
  t.ok(up, 'reconnected by itself');
  t.ok(gw.logs.some((line) => String(line.msg).includes('reachable again')));
  const prompt = 'After recovery: translate to English, bitte';
  await route(gw.app, prompt);
  const client = new Redis(local.url);
  t.teardown(() => client.quit());
  let found = 0;
  for (let i = 0; i < 50 && !found; i++) {
    found = await client.exists(`lorauter:emb:${embeddingKey(gw.gateway.encoder.fingerprint, prompt)}`);
    if (!found) await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(found, 1, 'writes again after recovery');
});

t.test('a slow Redis is bounded by the timeout', async (t) => {
  const local = await RedisServer.start();
  t.teardown(() => local.stop());
  const gw = await startGateway({ cache: { redisUrl: local.url, redisTimeoutMs: 100, maxEntries: 0 } });
  t.teardown(() => gw.close());
  await route(gw.app, 'warm up');
  // A stuck Redis: the process stopped, its connections open and silent.
  local.pause();
  t.teardown(() => local.resume());
  const started = Date.now();
  const response = await route(gw.app, 'Is this review positive? loved it');
  const elapsed = Date.now() - started;
  t.equal(response.statusCode, 200);
  t.ok(elapsed >= 90, `it waited for Redis, up to its timeout (${elapsed} ms)`);
  t.ok(elapsed < 1000, `answered in ${elapsed} ms despite a stuck redis`);
});
