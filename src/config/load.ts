import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Value } from 'typebox/value';
import YAML from 'yaml';
import { LLAMACPP_ENVIRONMENT } from '../upstreams/llamacpp/settings.js';
import { MERGE_ENVIRONMENT } from '../upstreams/merge/settings.js';
import type { KindEnvironment, SettingType } from './kind-settings.js';
import { ConfigSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Setter = (target: Record<string, any>, raw: string) => void;

const integer = (raw: string, key: string): number => {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${key} must be an integer, got "${raw}"`);
  return Number(raw);
};
const number = (raw: string, key: string): number => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`${key} must be a number, got "${raw}"`);
  return value;
};
const list = (raw: string): string[] => raw.split(',').map((item) => item.trim()).filter(Boolean);

function at(path: string[], convert: (raw: string, key: string) => unknown, envName: string): Setter {
  return (target, raw) => {
    let node = target;
    for (const segment of path.slice(0, -1)) node = node[segment] ??= {};
    node[path[path.length - 1]] = convert(raw, envName);
  };
}

const text = (raw: string) => raw;
/** One key a line (or comma-separated) in a file, e.g. a mounted Kubernetes Secret. */
const keysFromFile = (raw: string, key: string): string[] => {
  try {
    return list(readFileSync(raw, 'utf8').replace(/\s+/g, ','));
  } catch (error) {
    throw new ConfigError(`${key}: cannot read ${raw} (${(error as Error).message})`);
  }
};
const toggle = (raw: string, key: string): boolean => {
  if (/^(on|true|1|yes)$/i.test(raw.trim())) return true;
  if (/^(off|false|0|no)$/i.test(raw.trim())) return false;
  throw new ConfigError(`${key} must be on or off, got "${raw}"`);
};

const SETTERS: Record<SettingType, (raw: string, key: string) => unknown> = { text, integer, number, toggle };

/** An upstream kind's variables, declared in its folder, as setters under `upstream`. */
function kindEnvironment(variables: KindEnvironment): Record<string, (envName: string) => Setter> {
  return Object.fromEntries(Object.entries(variables).map(([name, [key, type]]) => [name, (e: string) => at(['upstream', key], SETTERS[type], e)]));
}

/** Environment variables and the config key each one sets. */
export const ENVIRONMENT: Record<string, (envName: string) => Setter> = {
  PORT: (e) => at(['port'], integer, e),
  HOST: (e) => at(['host'], text, e),
  LOG_LEVEL: (e) => at(['logLevel'], text, e),
  LORAUTER_LOG_LEVEL: (e) => at(['logLevel'], text, e),
  LORAUTER_TASKS: (e) => at(['tasks'], text, e),
  LORAUTER_TOP_K: (e) => at(['topK'], integer, e),
  LORAUTER_TEMPERATURE: (e) => at(['temperature'], number, e),
  LORAUTER_API_KEYS: (e) => at(['apiKeys'], list, e),
  LORAUTER_API_KEYS_FILE: (e) => at(['apiKeys'], keysFromFile, e),
  LORAUTER_METRICS_API_KEY: (e) => at(['metricsApiKey'], text, e),
  LORAUTER_ADMIN_API_KEY: (e) => at(['adminApiKey'], text, e),
  LORAUTER_REGISTRY_KEY_PREFIX: (e) => at(['registry', 'keyPrefix'], text, e),
  LORAUTER_REGISTRY_TIMEOUT_MS: (e) => at(['registry', 'timeoutMs'], integer, e),
  LORAUTER_REGISTRY_POLL_MS: (e) => at(['registry', 'pollMs'], integer, e),
  LORAUTER_TASKS_CHECK_INTERVAL_MS: (e) => at(['registry', 'fileCheckMs'], integer, e),
  LORAUTER_MIN_CONFIDENCE: (e) => at(['minConfidence'], number, e),
  LORAUTER_BASE_MARGIN: (e) => at(['baseMargin'], number, e),
  LORAUTER_DEFAULT_BASE_EXAMPLES: (e) => at(['defaultBaseExamples'], toggle, e),
  LORAUTER_CONVERSATION: (e) => at(['conversation'], text, e),
  LORAUTER_REROUTE_CONFIDENCE: (e) => at(['rerouteConfidence'], number, e),
  LORAUTER_ENCODER: (e) => at(['encoder', 'kind'], text, e),
  LORAUTER_ENCODER_MAX_DIMENSIONS: (e) => at(['encoder', 'maxDimensions'], integer, e),
  LORAUTER_ENCODER_MODEL: (e) => at(['encoder', 'model'], text, e),
  LORAUTER_ENCODER_URL: (e) => at(['encoder', 'url'], text, e),
  LORAUTER_ENCODER_MODEL_NAME: (e) => at(['encoder', 'modelName'], text, e),
  LORAUTER_ENCODER_API_KEY: (e) => at(['encoder', 'apiKey'], text, e),
  LORAUTER_ENCODER_POOLING: (e) => at(['encoder', 'pooling'], text, e),
  LORAUTER_ENCODER_QUERY_PREFIX: (e) => at(['encoder', 'queryPrefix'], text, e),
  LORAUTER_ENCODER_EXAMPLE_PREFIX: (e) => at(['encoder', 'examplePrefix'], text, e),
  LORAUTER_ENCODER_THREADS: (e) => at(['encoder', 'threads'], integer, e),
  LORAUTER_ENCODER_WORKERS: (e) => at(['encoder', 'workers'], integer, e),
  LORAUTER_ENCODER_MAX_BATCH: (e) => at(['encoder', 'maxBatch'], integer, e),
  LORAUTER_ENCODER_BATCH_WAIT_MS: (e) => at(['encoder', 'batchWaitMs'], number, e),
  LORAUTER_ENCODER_TIMEOUT_MS: (e) => at(['encoder', 'timeoutMs'], integer, e),
  LORAUTER_ENCODER_RETRIES: (e) => at(['encoder', 'retries'], integer, e),
  LORAUTER_HYBRID_WEIGHT: (e) => at(['encoder', 'hybridWeight'], number, e),
  LORAUTER_SHUTDOWN_DRAIN_SECONDS: (e) => at(['shutdownDrainSeconds'], number, e),
  LORAUTER_SHUTDOWN_GRACE_SECONDS: (e) => at(['shutdownGraceSeconds'], number, e),
  LORAUTER_MAX_ROUTED_CHARS: (e) => at(['maxRoutedChars'], integer, e),
  LORAUTER_BODY_LIMIT_BYTES: (e) => at(['bodyLimitBytes'], integer, e),
  LORAUTER_REQUEST_TIMEOUT_MS: (e) => at(['requestTimeoutMs'], integer, e),
  LORAUTER_KEEP_ALIVE_TIMEOUT_MS: (e) => at(['keepAliveTimeoutMs'], integer, e),
  LORAUTER_MAX_EVENT_LOOP_DELAY_MS: (e) => at(['maxEventLoopDelayMs'], integer, e),
  LORAUTER_RATE_LIMIT_MAX: (e) => at(['rateLimit', 'max'], integer, e),
  LORAUTER_RATE_LIMIT_WINDOW_MS: (e) => at(['rateLimit', 'windowMs'], integer, e),
  REDIS_URL: (e) => at(['cache', 'redisUrl'], text, e),
  LORAUTER_CACHE_MAX_ENTRIES: (e) => at(['cache', 'maxEntries'], integer, e),
  LORAUTER_DECISION_CACHE_MAX_ENTRIES: (e) => at(['cache', 'decisionEntries'], integer, e),
  LORAUTER_CACHE_TTL_SECONDS: (e) => at(['cache', 'ttlSeconds'], integer, e),
  LORAUTER_REDIS_TIMEOUT_MS: (e) => at(['cache', 'redisTimeoutMs'], integer, e),
  LORAUTER_UPSTREAM_URL: (e) => at(['upstream', 'url'], text, e),
  LORAUTER_UPSTREAM: (e) => at(['upstream', 'kind'], text, e),
  LORAUTER_UPSTREAM_API_KEY: (e) => at(['upstream', 'apiKey'], text, e),
  LORAUTER_BASE_MODEL: (e) => at(['upstream', 'baseModel'], text, e),
  LORAUTER_ROUTER_MODELS: (e) => at(['upstream', 'routerModelNames'], list, e),
  LORAUTER_UPSTREAM_CONNECT_TIMEOUT_MS: (e) => at(['upstream', 'connectTimeoutMs'], integer, e),
  LORAUTER_UPSTREAM_HEADERS_TIMEOUT_MS: (e) => at(['upstream', 'headersTimeoutMs'], integer, e),
  LORAUTER_UPSTREAM_BODY_TIMEOUT_MS: (e) => at(['upstream', 'bodyTimeoutMs'], integer, e),
  LORAUTER_UPSTREAM_MAX_CONCURRENCY: (e) => at(['upstream', 'maxConcurrency'], integer, e),
  LORAUTER_UPSTREAM_MAX_QUEUE: (e) => at(['upstream', 'maxQueue'], integer, e),
  LORAUTER_UPSTREAM_QUEUE_TIMEOUT_MS: (e) => at(['upstream', 'queueTimeoutMs'], integer, e),
  LORAUTER_UPSTREAM_HEALTH_INTERVAL_MS: (e) => at(['upstream', 'healthIntervalMs'], integer, e),
  LORAUTER_READY_REQUIRES_UPSTREAM: (e) => at(['upstream', 'readyRequiresUpstream'], toggle, e),
  ...kindEnvironment(MERGE_ENVIRONMENT),
  ...kindEnvironment(LLAMACPP_ENVIRONMENT),
};

function readConfigFile(path: string): Record<string, unknown> {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  try {
    const parsed = extname(path) === '.json' ? JSON.parse(source) : YAML.parse(source);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${(error as Error).message}`);
  }
}

function describeKey(instancePath: string): string {
  return instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message: string;
  params: Record<string, unknown>;
}

function describeIssue(errors: ValidationIssue[]): string {
  const first = errors[0];
  const key = describeKey(first.instancePath);
  if (first.keyword === 'boolean') return `${key}: unknown key`;
  const allowed = errors
    .filter((error) => error.keyword === 'const' && error.instancePath === first.instancePath)
    .map((error) => JSON.stringify(error.params.allowedValue));
  if (allowed.length > 0) return `${key}: must be one of ${allowed.join(', ')}`;
  return `${key}: ${first.message}`;
}

/**
 * Builds the configuration from defaults, then the optional file (LORAUTER_CONFIG or `file`),
 * then environment variables, then explicit overrides; throws a ConfigError naming the bad key.
 */
export function loadConfig(
  options: { env?: NodeJS.ProcessEnv; file?: string; overrides?: Record<string, unknown> } = {},
): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.LORAUTER_CONFIG;
  const raw: Record<string, any> = file ? readConfigFile(file) : {};
  for (const [name, setter] of Object.entries(ENVIRONMENT)) {
    const value = env[name];
    if (value !== undefined && value !== '') setter(name)(raw, value);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) raw[key] = value;
  }
  const withDefaults = Value.Default(ConfigSchema, raw);
  const errors = [...Value.Errors(ConfigSchema, withDefaults)] as ValidationIssue[];
  if (errors.length > 0) {
    throw new ConfigError(`invalid configuration: ${describeIssue(errors)}${file ? ` (config file ${file})` : ''}`);
  }
  return withDefaults as Config;
}
