import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config/load.js';

t.test('defaults', async (t) => {
  const config = loadConfig({ env: {} });
  t.match(config, { port: 8080, topK: 3, temperature: 0.2, logLevel: 'info', cache: { maxEntries: 10000 } });
  t.equal(config.tasks, undefined);
  t.equal(config.cache.redisUrl, undefined);
});

t.test('environment variables', async (t) => {
  const config = loadConfig({
    env: { PORT: '9000', HOST: '127.0.0.1', LORAUTER_TASKS: 'tasks.jsonl', REDIS_URL: 'redis://r:6379', LORAUTER_TOP_K: '5', LORAUTER_TEMPERATURE: '0.5', LOG_LEVEL: 'debug', LORAUTER_LOG_BUFFER_BYTES: '1048576' },
  });
  t.match(config, { port: 9000, host: '127.0.0.1', tasks: 'tasks.jsonl', topK: 5, temperature: 0.5, logLevel: 'debug', logBufferBytes: 1048576, cache: { redisUrl: 'redis://r:6379' } });
});

t.test('encoder settings: exactly the documented environment names, nested in the config file', async (t) => {
  const config = loadConfig({
    env: {
      LORAUTER_ENCODER: 'hybrid',
      LORAUTER_ENCODER_MODEL: '/models/e5',
      LORAUTER_ENCODER_URL: 'http://tei:8080',
      LORAUTER_ENCODER_MODEL_NAME: 'bge-small',
      LORAUTER_ENCODER_API_KEY: 'k',
      LORAUTER_ENCODER_POOLING: 'cls',
      LORAUTER_ENCODER_QUERY_PREFIX: 'query: ',
      LORAUTER_ENCODER_EXAMPLE_PREFIX: 'passage: ',
      LORAUTER_ENCODER_THREADS: '2',
      LORAUTER_ENCODER_MAX_BATCH: '16',
      LORAUTER_ENCODER_BATCH_WAIT_MS: '0.5',
      LORAUTER_HYBRID_WEIGHT: '0.7',
      LORAUTER_ENCODER_MAX_DIMENSIONS: '512',
      LORAUTER_ENCODER_MAX_ANSWER_BYTES: '1048576',
      LORAUTER_ENCODER_QUANTIZED: 'on',
      HF_ENDPOINT: 'https://hf-mirror.example',
      HF_TOKEN: 'hf_abc',
      HF_HUB_OFFLINE: '1',
      HF_HOME: '/data/hf',
      HF_HUB_CACHE: '/data/hub-cache',
      LORAUTER_HUB_TIMEOUT_MS: '2500',
      LORAUTER_HUB_RETRIES: '5',
      LORAUTER_HUB_LOCK_WAIT_MS: '30000',
    },
  });
  t.same(config.encoder, {
    kind: 'hybrid',
    model: '/models/e5',
    url: 'http://tei:8080',
    modelName: 'bge-small',
    apiKey: 'k',
    pooling: 'cls',
    queryPrefix: 'query: ',
    examplePrefix: 'passage: ',
    threads: 2,
    maxBatch: 16,
    batchWaitMs: 0.5,
    hybridWeight: 0.7,
    maxDimensions: 512,
    maxAnswerBytes: 1048576,
    timeoutMs: 10000,
    retries: 2,
    maxRetryWaitMs: 5000,
    quantized: true,
    hub: { endpoint: 'https://hf-mirror.example', token: 'hf_abc', offline: true, home: '/data/hf', cacheDir: '/data/hub-cache', timeoutMs: 2500, retries: 5, lockWaitMs: 30000 },
  });
  t.same(loadConfig({ env: {} }).encoder.hub, { endpoint: 'https://huggingface.co', offline: false, timeoutMs: 10000, retries: 3, lockWaitMs: 600000 }, 'the hub by default');
  t.equal(loadConfig({ env: { HUGGINGFACE_HUB_CACHE: '/old' } }).encoder.hub.cacheDir, '/old', 'the older name of HF_HUB_CACHE');
  t.equal(loadConfig({ env: { HUGGINGFACE_HUB_CACHE: '/old', HF_HUB_CACHE: '/new' } }).encoder.hub.cacheDir, '/new', 'HF_HUB_CACHE wins, as in huggingface_hub');
  t.equal(loadConfig({ env: {} }).encoder.kind, 'builtin', 'built-in by default');
  const dir = t.testdir({ 'c.yaml': 'encoder:\n  kind: onnx\n  model: /m\n' });
  t.match(loadConfig({ env: {}, file: join(dir, 'c.yaml') }).encoder, { kind: 'onnx', model: '/m' });
  t.throws(() => loadConfig({ env: { LORAUTER_ENCODER: 'bert' } }), /encoder\.kind: must be one of "builtin", "onnx", "remote", "hybrid"/);
  t.throws(() => loadConfig({ env: { LORAUTER_HYBRID_WEIGHT: '1.5' } }), /encoder\.hybridWeight: must be <= 1/);
  t.throws(() => loadConfig({ env: { LORAUTER_ENCODER_POOLING: 'max' } }), /encoder\.pooling: must be one of "mean", "cls", "last_token"/);
});

t.test('config file (YAML and JSON), environment wins', async (t) => {
  const dir = t.testdir({
    'c.yaml': 'port: 7000\ntopK: 4\ncache:\n  ttlSeconds: 60\n',
    'c.json': '{"temperature": 0.1}',
    'bad.yaml': 'port: [1\n',
    'unknown.yaml': 'cache:\n  colour: red\n',
  });
  const yaml = loadConfig({ env: { LORAUTER_CONFIG: join(dir, 'c.yaml'), LORAUTER_TOP_K: '2' } });
  t.match(yaml, { port: 7000, topK: 2, cache: { ttlSeconds: 60 } });
  t.equal(loadConfig({ env: {}, file: join(dir, 'c.json') }).temperature, 0.1);
  t.throws(() => loadConfig({ env: {}, file: join(dir, 'bad.yaml') }), /config file .*bad\.yaml/);
  t.throws(() => loadConfig({ env: {}, file: join(dir, 'unknown.yaml') }), /cache\.colour: unknown key/);
  t.throws(() => loadConfig({ env: {}, file: join(dir, 'missing.yaml') }), /cannot read config file/);
});

t.test('invalid values name the key', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /PORT must be an integer/],
    [{ PORT: '70000' }, /port: must be <= 65535/],
    [{ LORAUTER_TOP_K: '0' }, /topK: must be >= 1/],
    [{ LORAUTER_TEMPERATURE: '0' }, /temperature: must be > 0/],
    [{ LORAUTER_TEMPERATURE: 'warm' }, /LORAUTER_TEMPERATURE must be a number/],
    [{ LOG_LEVEL: 'loud' }, /logLevel: must be one of/],
  ];
  for (const [env, pattern] of cases) t.throws(() => loadConfig({ env }), pattern, pattern.source);
  t.throws(() => loadConfig({ env: { PORT: 'x' } }), ConfigError);
});

t.test('the upstream kind is checked against the table of kinds at start-up', async (t) => {
  const { startGateway } = await import('./helpers/gateway.js');
  await t.rejects(startGateway({ upstream: { url: 'http://127.0.0.1:1', kind: 'ollama' } }), /upstream\.kind \(LORAUTER_UPSTREAM\): must be one of "vllm", "sglang", "llamacpp", "lorax"/);
});

t.test('every setting is declared once in the schema: its variables, a description, and the generated reference agrees', async (t) => {
  const { SETTINGS } = await import('../src/config/environment.js');
  const { configurationReference } = await import('../src/config/reference.js');
  const { readFileSync } = await import('node:fs');
  for (const setting of SETTINGS) {
    const key = setting.path.join('.');
    t.ok(setting.names.length > 0, `${key} has an environment variable`);
    t.ok(typeof setting.schema.description === 'string' && setting.schema.description.length > 0, `${key} has a description`);
  }
  const names = SETTINGS.flatMap((setting) => [...setting.names, ...(setting.fileName ? [setting.fileName] : [])]);
  t.equal(new Set(names).size, names.length, 'no variable sets two settings');
  // Each variable reaches its key: a value unlike the default, read back from the loaded configuration.
  for (const setting of SETTINGS) {
    const { schema } = setting;
    const choices = (schema.anyOf ?? []).map((choice) => choice.const as string).filter((value) => value !== undefined);
    const pick: Record<string, [string, unknown]> = {
      integer: [String(Math.max(Number(schema.minimum ?? 0), 0) + 8), Math.max(Number(schema.minimum ?? 0), 0) + 8],
      number: [String(Number(schema.maximum ?? 1) / 2), Number(schema.maximum ?? 1) / 2],
      toggle: [schema.default === true ? 'off' : 'on', schema.default !== true],
      list: ['first-value-1,second-value-2', ['first-value-1', 'second-value-2']],
      text: choices.length > 0 ? [choices.at(-1)!, choices.at(-1)] : ['a-setting-value-1', 'a-setting-value-1'],
    };
    const [raw, expected] = pick[setting.type];
    for (const name of setting.names) {
      const config = loadConfig({ env: { [name]: raw } }) as unknown as Record<string, unknown>;
      const value = setting.path.reduce<unknown>((node, segment) => (node as Record<string, unknown>)?.[segment], config);
      t.same(value, expected, `${name}=${raw} sets ${setting.path.join('.')}`);
    }
  }
  t.equal(readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8'), configurationReference(), 'docs/configuration.md is current (npm run config-reference)');
});
