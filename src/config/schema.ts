import { Type, type Static } from 'typebox';
import { DEFAULT_MAX_ANSWER_BYTES } from '../bounded-text.js';
import { DEFAULT_LOG_BUFFER_BYTES } from '../logger.js';
import { LlamaCppSettings } from '../upstreams/llamacpp/settings.js';
import { MergeSettings } from '../upstreams/merge/settings.js';
import { Temperature, TopK } from './routing-options.js';


/** Measured on the FLAN pool with `lorauter eval --sweep` (see docs/routing.md). */
export const DEFAULT_MIN_CONFIDENCE = 0.01;

export const PoolingMode = (options: Record<string, unknown> = {}) => Type.Union([Type.Literal('mean'), Type.Literal('cls'), Type.Literal('last_token')], options);

/** Where models named by id come from and are kept: the Hugging Face ecosystem's own variables. */
export const HubSettingsSchema = Type.Object(
  {
    endpoint: Type.String({ env: 'HF_ENDPOINT', minLength: 1, default: 'https://huggingface.co', description: 'the Hugging Face hub, or a mirror of it' }),
    token: Type.Optional(Type.String({ env: 'HF_TOKEN', minLength: 1, description: 'token for gated and private models (unset: the file HF_TOKEN_PATH, else $HF_HOME/token, as huggingface-cli login writes it)' })),
    tokenPath: Type.Optional(Type.String({ env: 'HF_TOKEN_PATH', minLength: 1, description: 'a file holding the token' })),
    offline: Type.Boolean({ env: 'HF_HUB_OFFLINE', default: false, description: 'never ask the hub: models come from the cache, or start-up fails saying what is missing' }),
    home: Type.Optional(Type.String({ env: 'HF_HOME', minLength: 1, description: 'Hugging Face home (unset: $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface)' })),
    cacheDir: Type.Optional(Type.String({ env: ['HUGGINGFACE_HUB_CACHE', 'HF_HUB_CACHE'], minLength: 1, description: 'the model cache, shared with Python tools (unset: $HF_HOME/hub)' })),
    timeoutMs: Type.Integer({ env: 'LORAUTER_HUB_TIMEOUT_MS', minimum: 100, maximum: 600000, default: 10000, description: 'bound on each hub request until its headers, and on any silence within a download' }),
    lockWaitMs: Type.Integer({ env: 'LORAUTER_HUB_LOCK_WAIT_MS', minimum: 1000, maximum: 3600000, default: 600000, description: 'how long a start waits for another process (sharing the cache) to finish downloading the same file' }),
    retries: Type.Integer({ env: 'LORAUTER_HUB_RETRIES', minimum: 0, maximum: 20, default: 3, description: 'a download cut off or answered 5xx is taken up again (from where it stopped) this many times' }),
  },
  { additionalProperties: false, default: {} },
);

export type HubSettings = Static<typeof HubSettingsSchema>;

export const EncoderSettingsSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('builtin'), Type.Literal('onnx'), Type.Literal('remote'), Type.Literal('hybrid')], { env: 'LORAUTER_ENCODER', default: 'builtin', description: 'how prompts are embedded: built-in n-gram, ONNX sentence encoder, a remote embeddings server, or both mixed' }),
    maxDimensions: Type.Integer({ env: 'LORAUTER_ENCODER_MAX_DIMENSIONS', minimum: 8, maximum: 8192, default: 1024, description: 'builtin: exact projection up to this many tasks, hashing beyond' }),
    model: Type.Optional(Type.String({ env: 'LORAUTER_ENCODER_MODEL', minLength: 1, description: 'onnx, hybrid: a Hugging Face model id with an optional revision (BAAI/bge-small-en-v1.5, owner/name@commit), or a sentence-transformers model folder exported to ONNX' })),
    quantized: Type.Boolean({ env: 'LORAUTER_ENCODER_QUANTIZED', default: false, description: 'onnx, hybrid: load the quantized export (model_quantized.onnx) rather than the full-precision one' }),
    url: Type.Optional(Type.String({ env: 'LORAUTER_ENCODER_URL', minLength: 1, description: 'remote, hybrid: OpenAI-compatible embeddings server' })),
    modelName: Type.Optional(Type.String({ env: 'LORAUTER_ENCODER_MODEL_NAME', minLength: 1, description: 'remote: the `model` sent to the embeddings server' })),
    apiKey: Type.Optional(Type.String({ env: 'LORAUTER_ENCODER_API_KEY', description: 'remote: sent as Authorization: Bearer' })),
    pooling: Type.Optional(PoolingMode({ env: 'LORAUTER_ENCODER_POOLING', description: "onnx: how token vectors become one (unset: the model's 1_Pooling config, else mean)" })),
    queryPrefix: Type.String({ env: 'LORAUTER_ENCODER_QUERY_PREFIX', default: '', description: 'prepended to prompts before encoding (e5: "query: ")' }),
    examplePrefix: Type.String({ env: 'LORAUTER_ENCODER_EXAMPLE_PREFIX', default: '', description: 'prepended to task examples before encoding' }),
    threads: Type.Integer({ env: 'LORAUTER_ENCODER_THREADS', minimum: 1, maximum: 256, default: 1, description: 'onnx: intra-op threads' }),
    workers: Type.Optional(Type.Integer({ env: 'LORAUTER_ENCODER_WORKERS', minimum: 0, maximum: 64, description: 'builtin: worker threads that encode prompts (0: on the event loop; unset: 1 when more than one CPU is available)' })),
    maxBatch: Type.Integer({ env: 'LORAUTER_ENCODER_MAX_BATCH', minimum: 1, maximum: 4096, default: 32, description: 'texts in one model run or embeddings request' }),
    batchWaitMs: Type.Number({ env: 'LORAUTER_ENCODER_BATCH_WAIT_MS', minimum: 0, maximum: 1000, default: 2, description: 'longest wait for a micro-batch to fill' }),
    hybridWeight: Type.Number({ env: 'LORAUTER_HYBRID_WEIGHT', minimum: 0, maximum: 1, default: 0.5, description: 'hybrid: weight of the neural cosine' }),
    timeoutMs: Type.Integer({ env: 'LORAUTER_ENCODER_TIMEOUT_MS', minimum: 1, maximum: 600000, default: 10000, description: 'remote: one embeddings request; builtin: how long a worker thread may hold a prompt, and a prompt wait for one' }),
    maxAnswerBytes: Type.Integer({ env: 'LORAUTER_ENCODER_MAX_ANSWER_BYTES', minimum: 1024, default: DEFAULT_MAX_ANSWER_BYTES, description: 'remote: the largest embeddings answer read (beyond: the request fails, not retried)' }),
    retries: Type.Integer({ env: 'LORAUTER_ENCODER_RETRIES', minimum: 0, maximum: 10, default: 2, description: 'remote: retries on 429, 5xx and connection errors' }),
    maxRetryWaitMs: Type.Integer({ env: 'LORAUTER_ENCODER_MAX_RETRY_WAIT_MS', minimum: 0, maximum: 60000, default: 5000, description: 'remote: the longest Retry-After honoured' }),
    hub: HubSettingsSchema,
  },
  { additionalProperties: false, default: {} },
);

export type EncoderSettings = Static<typeof EncoderSettingsSchema>;
export type EncoderKind = EncoderSettings['kind'];

export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({ env: 'PORT', minimum: 0, maximum: 65535, default: 8080, description: 'port the gateway listens on' }),
    host: Type.String({ env: 'HOST', minLength: 1, default: '0.0.0.0', description: 'address the gateway listens on' }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { env: ['LOG_LEVEL', 'LORAUTER_LOG_LEVEL'], default: 'info', description: 'log level (JSON lines on stdout, pino)' },
    ),
    logBufferBytes: Type.Integer({ env: 'LORAUTER_LOG_BUFFER_BYTES', minimum: 65536, default: DEFAULT_LOG_BUFFER_BYTES, description: 'log lines held while stdout is not read (a stalled log collector); beyond, lines are dropped and counted' }),
    tasks: Type.Optional(Type.String({ env: 'LORAUTER_TASKS', minLength: 1, description: 'task file: .jsonl examples or .yaml/.json registry' })),
    topK: TopK({ env: 'LORAUTER_TOP_K', default: 3, description: 'tasks a prompt is routed to (K); a request may ask for another' }),
    temperature: Temperature({ env: 'LORAUTER_TEMPERATURE', default: 0.2, description: 'softmax temperature over the top-K similarities (τ); a request may ask for another' }),
    minConfidence: Type.Number({ env: 'LORAUTER_MIN_CONFIDENCE', minimum: 0, maximum: 1, default: DEFAULT_MIN_CONFIDENCE, description: 'below this calibrated confidence a request goes to the base model (0: never)' }),
    baseMargin: Type.Number({ env: 'LORAUTER_BASE_MARGIN', minimum: 0, maximum: 2, default: 0.05, description: 'a base example must beat the nearest task example by this cosine to take a prompt' }),
    defaultBaseExamples: Type.Boolean({ env: 'LORAUTER_DEFAULT_BASE_EXAMPLES', default: true, description: 'a registry that lists no base examples gets the built-in set' }),
    conversation: Type.Union([Type.Literal('last_user'), Type.Literal('sticky')], { env: 'LORAUTER_CONVERSATION', default: 'last_user', description: 'chat routing: on the last user turn, or kept from the first one' }),
    rerouteConfidence: Type.Number({ env: 'LORAUTER_REROUTE_CONFIDENCE', minimum: 0, maximum: 1, default: 0.5, description: 'sticky: a later turn this confident about another task re-routes' }),
    encoder: EncoderSettingsSchema,
    apiKeys: Type.Array(Type.String({ minLength: 8 }), { env: 'LORAUTER_API_KEYS', envFile: 'LORAUTER_API_KEYS_FILE', default: [], description: 'Bearer keys clients must send for /v1/* and the upstream paths (none: open)' }),
    adminApiKey: Type.Optional(Type.String({ env: 'LORAUTER_ADMIN_API_KEY', minLength: 8, description: 'Bearer key for the admin API (PUT/GET/DELETE /v1/tasks/{id}, /v1/adapters/{id}); unset: no admin API' })),
    registry: Type.Object(
      {
        keyPrefix: Type.String({ env: 'LORAUTER_REGISTRY_KEY_PREFIX', minLength: 1, default: 'lorauter:registry:', description: 'Redis keys of the shared registry' }),
        timeoutMs: Type.Integer({ env: 'LORAUTER_REGISTRY_TIMEOUT_MS', minimum: 1, maximum: 60000, default: 2000, description: 'bound on each registry command to Redis' }),
        pollMs: Type.Integer({ env: 'LORAUTER_REGISTRY_POLL_MS', minimum: 50, maximum: 600000, default: 1000, description: 'how often a replica checks the registry version besides pub/sub' }),
        fileCheckMs: Type.Integer({ env: 'LORAUTER_TASKS_CHECK_INTERVAL_MS', minimum: 0, maximum: 3600000, default: 5000, description: 'how often the task file is checked for changes besides watching its folder (0: watching only)' }),
      },
      { additionalProperties: false, default: {} },
    ),
    metricsApiKey: Type.Optional(Type.String({ env: 'LORAUTER_METRICS_API_KEY', minLength: 8, description: 'Bearer key for /metrics (unset: open)' })),
    shutdownDrainSeconds: Type.Number({ env: 'LORAUTER_SHUTDOWN_DRAIN_SECONDS', minimum: 0, maximum: 600, default: 5, description: 'after a stop signal: /readyz says 503 while requests are still served' }),
    shutdownGraceSeconds: Type.Number({ env: 'LORAUTER_SHUTDOWN_GRACE_SECONDS', minimum: 0, maximum: 600, default: 10, description: 'then: in-flight requests get this long; open streams end with an error event' }),
    maxRoutedChars: Type.Integer({ env: 'LORAUTER_MAX_ROUTED_CHARS', minimum: 256, default: 16384, description: 'longer prompts are routed on their first and last halves' }),
    bodyLimitBytes: Type.Integer({ env: 'LORAUTER_BODY_LIMIT_BYTES', minimum: 1024, default: 1048576, description: 'largest request body (beyond: 413)' }),
    requestTimeoutMs: Type.Integer({ env: 'LORAUTER_REQUEST_TIMEOUT_MS', minimum: 100, maximum: 3600000, default: 30000, description: 'a client must send its whole request (headers and body) within this long, else 408 and the connection closes' }),
    keepAliveTimeoutMs: Type.Integer({ env: 'LORAUTER_KEEP_ALIVE_TIMEOUT_MS', minimum: 100, maximum: 3600000, default: 72000, description: 'an idle keep-alive connection is closed after this long' }),
    maxEventLoopDelayMs: Type.Integer({ env: 'LORAUTER_MAX_EVENT_LOOP_DELAY_MS', minimum: 0, maximum: 60000, default: 1000, description: 'while the event loop lags more than this (its mean delay over a second, read every second), requests get 503 with Retry-After; not in the first 2 s after start, whose readings cover the start itself (0: never)' }),
    rateLimit: Type.Object(
      {
        max: Type.Integer({ env: 'LORAUTER_RATE_LIMIT_MAX', minimum: 0, default: 0, description: 'requests a client (API key, else address) may make per window (0: no limit)' }),
        windowMs: Type.Integer({ env: 'LORAUTER_RATE_LIMIT_WINDOW_MS', minimum: 100, maximum: 86400000, default: 60000, description: 'the rate limit\'s window' }),
      },
      { additionalProperties: false, default: {} },
    ),
    cache: Type.Object(
      {
        maxEntries: Type.Integer({ env: 'LORAUTER_CACHE_MAX_ENTRIES', minimum: 0, default: 10000, description: 'in-process embedding LRU' }),
        decisionEntries: Type.Integer({ env: 'LORAUTER_DECISION_CACHE_MAX_ENTRIES', minimum: 0, default: 10000, description: 'in-process LRU of whole routing decisions' }),
        redisUrl: Type.Optional(Type.String({ env: 'REDIS_URL', minLength: 1, description: 'Redis for the shared embedding cache, the shared registry and the rate limit (unset: in process only)' })),
        ttlSeconds: Type.Integer({ env: 'LORAUTER_CACHE_TTL_SECONDS', minimum: 1, default: 86400, description: 'how long an embedding stays in Redis' }),
        redisTimeoutMs: Type.Integer({ env: 'LORAUTER_REDIS_TIMEOUT_MS', minimum: 1, maximum: 60000, default: 50, description: 'bound on each cache command to Redis (routing goes on without it)' }),
        keyPrefix: Type.String({ env: 'LORAUTER_CACHE_KEY_PREFIX', default: 'lorauter:emb:', description: 'Redis keys of the embedding cache' }),
      },
      { additionalProperties: false, default: {} },
    ),
    upstream: Type.Object(
      {
        url: Type.Optional(Type.String({ env: 'LORAUTER_UPSTREAM_URL', minLength: 1, description: 'the multi-LoRA LLM server (unset: routing only)' })),
        // Checked against the table of kinds (src/upstreams/index.ts) when the upstream is created.
        kind: Type.Optional(Type.String({ env: 'LORAUTER_UPSTREAM', minLength: 1, description: 'upstream kind: vllm (default), llamacpp, lorax, sglang' })),
        apiKey: Type.Optional(Type.String({ env: 'LORAUTER_UPSTREAM_API_KEY', description: 'sent upstream as Authorization: Bearer (unset: the client\'s own, unless the gateway checks keys)' })),
        baseModel: Type.Optional(Type.String({ env: 'LORAUTER_BASE_MODEL', minLength: 1, description: 'the server\'s base model name: abstained requests go to it' })),
        routerModelNames: Type.Array(Type.String({ minLength: 1 }), { env: 'LORAUTER_ROUTER_MODELS', default: ['lorauter', 'auto'], description: 'values of `model` that ask the gateway to route' }),
        connectTimeoutMs: Type.Integer({ env: 'LORAUTER_UPSTREAM_CONNECT_TIMEOUT_MS', minimum: 1, default: 5000, description: 'connecting to the upstream (then: 504)' }),
        headersTimeoutMs: Type.Integer({ env: 'LORAUTER_UPSTREAM_HEADERS_TIMEOUT_MS', minimum: 1, default: 60000, description: 'until the upstream answers with headers (then: 504)' }),
        bodyTimeoutMs: Type.Integer({ env: 'LORAUTER_UPSTREAM_BODY_TIMEOUT_MS', minimum: 1, default: 300000, description: 'longest silence within an answer or stream (then: 504, or an error event)' }),
        maxAnswerBytes: Type.Integer({ env: 'LORAUTER_UPSTREAM_MAX_ANSWER_BYTES', minimum: 1024, default: DEFAULT_MAX_ANSWER_BYTES, description: 'the largest upstream answer read whole (JSON answers, errors, the drivers\' own calls; beyond: 502); streams pass through unbounded' }),
        maxConcurrency: Type.Integer({ env: 'LORAUTER_UPSTREAM_MAX_CONCURRENCY', minimum: 1, default: 128, description: 'requests to the upstream at once' }),
        maxQueue: Type.Integer({ env: 'LORAUTER_UPSTREAM_MAX_QUEUE', minimum: 0, default: 256, description: 'requests waiting for an upstream slot at most (beyond: 503)' }),
        queueTimeoutMs: Type.Integer({ env: 'LORAUTER_UPSTREAM_QUEUE_TIMEOUT_MS', minimum: 1, default: 5000, description: 'the longest wait for an upstream slot (then: 503 with Retry-After)' }),
        healthIntervalMs: Type.Integer({ env: 'LORAUTER_UPSTREAM_HEALTH_INTERVAL_MS', minimum: 100, default: 5000, description: "how often the upstream's /health is asked" }),
        readyRequiresUpstream: Type.Boolean({ env: 'LORAUTER_READY_REQUIRES_UPSTREAM', default: false, description: '/readyz is 503 while the upstream is not up' }),
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
