import t from 'tap';
import { DEFAULT_MAX_ANSWER_BYTES } from '../src/bounded-text.js';
import { RemoteEncoder, type RemoteEncoderOptions } from '../src/encoders/remote/remote-encoder.js';
import { bagOfWords, startFakeEmbeddings } from './fakes/embeddings.js';

const options = (url: string, overrides: Partial<RemoteEncoderOptions> = {}): RemoteEncoderOptions => ({
  url,
  modelName: 'bge-small',
  apiKey: 'secret',
  queryPrefix: '',
  examplePrefix: '',
  maxBatch: 4,
  batchWaitMs: 5,
  timeoutMs: 2000,
  retries: 2,
  maxRetryWaitMs: 2000,
  maxAnswerBytes: DEFAULT_MAX_ANSWER_BYTES,
  ...overrides,
});

function normalized(values: number[]): number[] {
  const norm = Math.hypot(...values);
  return values.map((x) => x / norm);
}

t.test('embeds through /v1/embeddings: batches, order by index, key, model, prefixes', async (t) => {
  const { fake } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 24, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  for (const url of [fake.url, `${fake.url}/v1`, `${fake.url}/v1/embeddings`]) {
    const encoder = await RemoteEncoder.connect(options(url));
    t.equal(encoder.dimensions, 24, `dimension learnt from ${url}`);
    await encoder.close();
  }
  const encoder = await RemoteEncoder.connect(options(fake.url, { queryPrefix: 'query: ', examplePrefix: 'passage: ' }));
  t.teardown(() => encoder.close());
  fake.received.length = 0;
  const texts = Array.from({ length: 10 }, (_, i) => `sentence number ${i} about trains`);
  const vectors = await Promise.all(texts.map((text) => encoder.encode([text]).then(([vector]) => vector)));
  const sizes = fake.received.map((request) => request.body.input.length);
  t.ok(sizes.every((size) => size <= 4), `batches of at most maxBatch: ${sizes}`);
  t.ok(sizes.length < 10, 'concurrent texts share requests');
  t.equal(fake.last().headers.authorization, 'Bearer secret');
  t.equal(fake.last().body.model, 'bge-small');
  texts.forEach((text, i) => {
    const expected = normalized(bagOfWords(`query: ${text}`, 24));
    t.ok(expected.every((x, j) => Math.abs(vectors[i][j] - x) < 1e-6), `text ${i}: its own vector, prefixed, normalised`);
  });
  const [example] = await encoder.encode(['a task example'], 'example');
  t.same(fake.last().body.input, ['passage: a task example']);
  t.ok(Math.abs(example[0] - normalized(bagOfWords('passage: a task example', 24))[0]) < 1e-6);
});

t.test('retries 429 and 5xx, honouring Retry-After; gives up after the retries', async (t) => {
  const { fake, state } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 8, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  const encoder = await RemoteEncoder.connect(options(fake.url));
  t.teardown(() => encoder.close());
  state.failures.push({ status: 429, retryAfter: '0.3' }, { status: 503 });
  fake.received.length = 0;
  const started = Date.now();
  const [vector] = await encoder.encode(['hello world']);
  t.equal(vector.length, 8);
  t.equal(fake.received.length, 3, 'two failures, then the answer');
  t.ok(Date.now() - started >= 290, 'waited as Retry-After said');

  state.failures.push({ status: 500 }, { status: 500 }, { status: 500 });
  await t.rejects(encoder.encode(['still failing']), { name: 'EncoderUnavailableError', statusCode: 503, message: /HTTP 500/ });

  state.failures.push({ status: 429, retryAfter: '3600' });
  const capped = Date.now();
  await encoder.encode(['a long Retry-After is capped']);
  t.ok(Date.now() - capped < 2500, 'Retry-After bounded by maxRetryWaitMs');
});

t.test('a changed dimension is refused with a clear error', async (t) => {
  const { fake, state } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 8, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  const encoder = await RemoteEncoder.connect(options(fake.url));
  t.teardown(() => encoder.close());
  state.dimensions = 12;
  await t.rejects(encoder.encode(['after a model swap']), /now answers with 12-dimensional vectors; the routing index was built with 8.*restart the gateway/);
});

t.test('a slow server is bounded by the timeout', async (t) => {
  const { fake, state } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 8, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  const encoder = await RemoteEncoder.connect(options(fake.url, { timeoutMs: 200, retries: 0 }));
  t.teardown(() => encoder.close());
  state.delayMs = 1000;
  const started = Date.now();
  await t.rejects(encoder.encode(['slow']), { name: 'EncoderUnavailableError' });
  t.ok(Date.now() - started < 900, 'did not wait for the slow answer');
});

t.test('an answer larger than maxAnswerBytes fails the request, declared or chunked, and is not asked for again', async (t) => {
  const { fake, state } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 8, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  const encoder = await RemoteEncoder.connect(options(fake.url, { maxAnswerBytes: 2048 }));
  t.teardown(() => encoder.close());
  t.equal((await encoder.encode(['fits'])).length, 1, 'an answer within the bound is read');
  for (const chunked of [false, true]) {
    state.chunked = chunked;
    state.dimensions = 8;
    t.equal((await encoder.encode(['still fits'])).length, 1, `chunked=${chunked}: within the bound`);
    // Mostly zeros ("0,"): 2,000 of them are about 4 KB. The size is checked before the dimension.
    state.dimensions = 2000;
    const before = fake.received.filter((r) => r.path === '/v1/embeddings').length;
    await t.rejects(encoder.encode(['too large now']), { name: 'EncoderUnavailableError', message: /larger than 2048 bytes \(LORAUTER_ENCODER_MAX_ANSWER_BYTES\)/ }, `chunked=${chunked}: refused`);
    t.equal(fake.received.filter((r) => r.path === '/v1/embeddings').length - before, 1, `chunked=${chunked}: not retried`);
  }
  state.chunked = false;
  state.dimensions = 8;
  t.equal((await encoder.encode(['after'])).length, 1, 'the next request is served');
});

t.test('bad setups fail at start-up with what to do', async (t) => {
  const { fake } = await startFakeEmbeddings({ model: 'bge-small', dimensions: 8, apiKey: 'secret' });
  t.teardown(() => fake.stop());
  await t.rejects(RemoteEncoder.connect(options(fake.url, { apiKey: 'wrong' })), { name: 'EncoderSetupError', message: /HTTP 401.*Check LORAUTER_ENCODER_URL/ });
  await t.rejects(RemoteEncoder.connect(options(fake.url, { modelName: 'other' })), /model other.*HTTP 404/);
  const url = fake.url;
  await fake.stop();
  await t.rejects(RemoteEncoder.connect(options(url, { retries: 0 })), { name: 'EncoderSetupError', message: /did not answer a test request/ });
});
