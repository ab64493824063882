import { Type, type Static } from 'typebox';

export const UpstreamKind = Type.Union([Type.Literal('vllm'), Type.Literal('llamacpp'), Type.Literal('lorax')]);

export const ConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
    host: Type.String({ minLength: 1, default: '0.0.0.0' }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { default: 'info' },
    ),
    tasks: Type.Optional(Type.String({ minLength: 1, description: 'task file: .jsonl examples or .yaml/.json registry' })),
    topK: Type.Integer({ minimum: 1, maximum: 64, default: 3 }),
    temperature: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 0.2 }),
    encoderMaxDimensions: Type.Integer({ minimum: 8, maximum: 8192, default: 1024 }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1048576 }),
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
        kind: Type.Optional(UpstreamKind),
        apiKey: Type.Optional(Type.String()),
        baseModel: Type.Optional(Type.String({ minLength: 1 })),
        routerModelNames: Type.Array(Type.String({ minLength: 1 }), { default: ['lorauter', 'auto'] }),
        connectTimeoutMs: Type.Integer({ minimum: 1, default: 5000 }),
        headersTimeoutMs: Type.Integer({ minimum: 1, default: 60000 }),
        bodyTimeoutMs: Type.Integer({ minimum: 1, default: 300000 }),
        vllmMode: Type.Optional(Type.Union([Type.Literal('top1'), Type.Literal('merge')])),
        maxLoraRank: Type.Integer({ minimum: 1, default: 64 }),
        mergeDir: Type.Optional(Type.String({ minLength: 1 })),
        mergeWeightStep: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.05 }),
        maxLoadedMerges: Type.Integer({ minimum: 1, default: 8 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
