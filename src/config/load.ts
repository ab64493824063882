import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Value } from 'typebox/value';
import YAML from 'yaml';
import { ConfigError, ENVIRONMENT } from './environment.js';
import { ConfigSchema, type Config } from './schema.js';

export { ConfigError, ENVIRONMENT };

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
  for (const [name, set] of Object.entries(ENVIRONMENT)) {
    const value = env[name];
    if (value !== undefined && value !== '') set(raw, value);
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
