import { Type, type Static } from 'typebox';
import { LlamaCppSettings } from '../upstreams/llamacpp/settings.js';
import { MergeSettings } from '../upstreams/merge/settings.js';
import { Temperature, TopK } from './routing-options.js';


/** Measured on the FLAN pool with `lorauter eval --sweep` (see the README, "Confidence and abstention"). */
export const DEFAULT_MIN_CONFIDENCE = 0.01;

export const PoolingMode = Type.Union([Type.Literal('mean'), Type.Literal('cls'), Type.Literal('last_token')]);

export const EncoderSettingsSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('builtin'), Type.Literal('onnx'), Type.Literal('remote'), Type.Literal('hybrid')], { default: 'builtin' }),
    maxDimensions: Type.Integer({ minimum: 8, maximum: 8192, default: 1024, description: 'builtin: exact projection up to this many tasks, hashing beyond' }),
    model: Type.Optional(Type.String({ minLength: 1, description: 'onnx, hybrid: sentence-transformers model folder exported to ONNX' })),
    url: Type.Optional(Type.String({ minLength: 1, description: 'remote, hybrid: OpenAI-compatible embeddings server' })),
    modelName: Type.Optional(Type.String({ minLength: 1, description: 'remote: the `model` sent to the embeddings server' })),
    apiKey: Type.Optional(Type.String({ description: 'remote: sent as Authorization: Bearer' })),
    pooling: Type.Optional(PoolingMode),
    queryPrefix: Type.String({ default: '', description: 'prepended to prompts before encoding (e5: "query: ")' }),
    examplePrefix: Type.String({ default: '', description: 'prepended to task examples before encoding' }),
    threads: Type.Integer({ minimum: 1, maximum: 256, default: 1, description: 'onnx: intra-op threads' }),
    workers: Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: 'builtin: worker threads that encode prompts (0: on the event loop; unset: 1 when more than one CPU is available)' })),
    maxBatch: Type.Integer({ minimum: 1, maximum: 4096, default: 32, description: 'texts in one model run or embeddings request' }),
    batchWaitMs: Type.Number({ minimum: 0, maximum: 1000, default: 2, description: 'longest wait for a micro-batch to fill' }),
    hybridWeight: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'hybrid: weight of the neural cosine' }),
    timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 10000, description: 'remote: one embeddings request; builtin: how long a worker thread may hold a prompt, and a prompt wait for one' }),
    retries: Type.Integer({ minimum: 0, maximum: 10, default: 2, description: 'remote: retries on 429, 5xx and connection errors' }),
    maxRetryWaitMs: Type.Integer({ minimum: 0, maximum: 60000, default: 5000, description: 'remote: the longest Retry-After honoured' }),
  },
  { additionalProperties: false, default: {} },
);

export type EncoderSettings = Static<typeof EncoderSettingsSchema>;
export type EncoderKind = EncoderSettings['kind'];

export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    host: Type.String({ minLength: 1, default: '0.0.0.0' }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { default: 'info' },
    ),
    tasks: Type.Optional(Type.String({ minLength: 1, description: 'task file: .jsonl examples or .yaml/.json registry' })),
    topK: TopK({ default: 3 }),
    temperature: Temperature({ default: 0.2 }),
    minConfidence: Type.Number({ minimum: 0, maximum: 1, default: DEFAULT_MIN_CONFIDENCE, description: 'below this calibrated confidence a request goes to the base model (0: never)' }),
    baseMargin: Type.Number({ minimum: 0, maximum: 2, default: 0.05, description: 'a base example must beat the nearest task example by this cosine to take a prompt' }),
    defaultBaseExamples: Type.Boolean({ default: true, description: 'a registry that lists no base examples gets the built-in set' }),
    conversation: Type.Union([Type.Literal('last_user'), Type.Literal('sticky')], { default: 'last_user', description: 'chat routing: on the last user turn, or kept from the first one' }),
    rerouteConfidence: Type.Number({ minimum: 0, maximum: 1, default: 0.5, description: 'sticky: a later turn this confident about another task re-routes' }),
    encoder: EncoderSettingsSchema,
    apiKeys: Type.Array(Type.String({ minLength: 8 }), { default: [], description: 'Bearer keys clients must send for /v1/* and the upstream paths (none: open)' }),
    adminApiKey: Type.Optional(Type.String({ minLength: 8, description: 'Bearer key for the admin API (PUT/GET/DELETE /v1/tasks/{id}, /v1/adapters/{id}); unset: no admin API' })),
    registry: Type.Object(
      {
        keyPrefix: Type.String({ minLength: 1, default: 'lorauter:registry:', description: 'Redis keys of the shared registry' }),
        timeoutMs: Type.Integer({ minimum: 1, maximum: 60000, default: 2000, description: 'bound on each registry command to Redis' }),
        pollMs: Type.Integer({ minimum: 50, maximum: 600000, default: 1000, description: 'how often a replica checks the registry version besides pub/sub' }),
        fileCheckMs: Type.Integer({ minimum: 0, maximum: 3600000, default: 5000, description: 'how often the task file is checked for changes besides watching its folder (0: watching only)' }),
      },
      { additionalProperties: false, default: {} },
    ),
    metricsApiKey: Type.Optional(Type.String({ minLength: 8, description: 'Bearer key for /metrics (unset: open)' })),
    shutdownDrainSeconds: Type.Number({ minimum: 0, maximum: 600, default: 5, description: 'after a stop signal: /readyz says 503 while requests are still served' }),
    shutdownGraceSeconds: Type.Number({ minimum: 0, maximum: 600, default: 10, description: 'then: in-flight requests get this long; open streams end with an error event' }),
    maxRoutedChars: Type.Integer({ minimum: 256, default: 16384, description: 'longer prompts are routed on their first and last halves' }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1048576 }),
    requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 30000, description: 'a client must send its whole request (headers and body) within this long, else 408 and the connection closes' }),
    keepAliveTimeoutMs: Type.Integer({ minimum: 100, maximum: 3600000, default: 72000, description: 'an idle keep-alive connection is closed after this long' }),
    maxEventLoopDelayMs: Type.Integer({ minimum: 0, maximum: 60000, default: 1000, description: 'while the event loop lags more than this, requests get 503 with Retry-After (0: never)' }),
    rateLimit: Type.Object(
      {
        max: Type.Integer({ minimum: 0, default: 0, description: 'requests a client (API key, else address) may make per window (0: no limit)' }),
        windowMs: Type.Integer({ minimum: 100, maximum: 86400000, default: 60000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    cache: Type.Object(
      {
        maxEntries: Type.Integer({ minimum: 0, default: 10000, description: 'in-process embedding LRU' }),
        decisionEntries: Type.Integer({ minimum: 0, default: 10000, description: 'in-process LRU of whole routing decisions' }),
        redisUrl: Type.Optional(Type.String({ minLength: 1 })),
        ttlSeconds: Type.Integer({ minimum: 1, default: 86400 }),
        redisTimeoutMs: Type.Integer({ minimum: 1, maximum: 60000, default: 50 }),
        keyPrefix: Type.String({ default: 'lorauter:emb:' }),
      },
      { additionalProperties: false, default: {} },
    ),
    upstream: Type.Object(
      {
        url: Type.Optional(Type.String({ minLength: 1 })),
        // Checked against the table of kinds (src/upstreams/index.ts) when the upstream is created.
        kind: Type.Optional(Type.String({ minLength: 1, description: 'upstream kind: vllm (default), llamacpp, lorax, sglang' })),
        apiKey: Type.Optional(Type.String()),
        baseModel: Type.Optional(Type.String({ minLength: 1 })),
        routerModelNames: Type.Array(Type.String({ minLength: 1 }), { default: ['lorauter', 'auto'] }),
        connectTimeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
        headersTimeoutMs: Type.Integer({ minimum: 1, default: 60000 }),
        bodyTimeoutMs: Type.Integer({ minimum: 1, default: 300000 }),
        maxConcurrency: Type.Integer({ minimum: 1, default: 128, description: 'requests to the upstream at once' }),
        maxQueue: Type.Integer({ minimum: 0, default: 256, description: 'requests waiting for an upstream slot at most (beyond: 503)' }),
        queueTimeoutMs: Type.Integer({ minimum: 1, default: 5000, description: 'the longest wait for an upstream slot (then: 503 with Retry-After)' }),
        healthIntervalMs: Type.Integer({ minimum: 100, default: 5000, description: "how often the upstream's /health is asked" }),
        readyRequiresUpstream: Type.Boolean({ default: false, description: '/readyz is 503 while the upstream is not up' }),
        // Each kind's own settings, declared in its folder.
        ...MergeSettings,
        ...LlamaCppSettings,
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
