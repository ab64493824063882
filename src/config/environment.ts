import { readFileSync } from 'node:fs';
import { ConfigSchema } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** How a variable's text becomes the setting's value. */
export type SettingType = 'text' | 'integer' | 'number' | 'toggle' | 'list';

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  anyOf?: SchemaNode[];
  items?: SchemaNode;
  env?: string | string[];
  envFile?: string;
  [keyword: string]: unknown;
}

/** One setting of the configuration schema: where it sits, the variables that set it, its schema. */
export interface Setting {
  path: string[];
  names: string[];
  /** A variable naming a file that holds the value (keys one a line, as a mounted Secret). */
  fileName?: string;
  type: SettingType;
  schema: SchemaNode;
}

function typeOf(schema: SchemaNode): SettingType {
  if (schema.type === 'integer') return 'integer';
  if (schema.type === 'number') return 'number';
  if (schema.type === 'boolean') return 'toggle';
  if (schema.type === 'array') return 'list';
  return 'text';
}

/** Every leaf of a schema, with the environment variables its options declare (`env`, `envFile`). */
export function settingsOf(schema: SchemaNode, path: string[] = []): Setting[] {
  if (schema.type === 'object' && schema.properties) {
    return Object.entries(schema.properties).flatMap(([key, child]) => settingsOf(child, [...path, key]));
  }
  const names = schema.env === undefined ? [] : ([] as string[]).concat(schema.env);
  return [{ path, names, fileName: schema.envFile, type: typeOf(schema), schema }];
}

/** The settings, each declared once in the schema (src/config/schema.ts and the kinds' settings.ts). */
export const SETTINGS: readonly Setting[] = settingsOf(ConfigSchema as unknown as SchemaNode);

const integer = (raw: string, name: string): number => {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer, got "${raw}"`);
  return Number(raw);
};
const number = (raw: string, name: string): number => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`${name} must be a number, got "${raw}"`);
  return value;
};
const list = (raw: string): string[] => raw.split(',').map((item) => item.trim()).filter(Boolean);
const toggle = (raw: string, name: string): boolean => {
  if (/^(on|true|1|yes)$/i.test(raw.trim())) return true;
  if (/^(off|false|0|no)$/i.test(raw.trim())) return false;
  throw new ConfigError(`${name} must be on or off, got "${raw}"`);
};
const PARSERS: Record<SettingType, (raw: string, name: string) => unknown> = { text: (raw) => raw, integer, number, toggle, list };
/** One key a line (or comma-separated) in a file, e.g. a mounted Kubernetes Secret. */
const listFromFile = (raw: string, name: string): string[] => {
  try {
    return list(readFileSync(raw, 'utf8').replace(/\s+/g, ','));
  } catch (error) {
    throw new ConfigError(`${name}: cannot read ${raw} (${(error as Error).message})`);
  }
};

/** Sets the value at `path` in a raw configuration object. */
function setAt(target: Record<string, any>, path: string[], value: unknown): void {
  let node = target;
  for (const segment of path.slice(0, -1)) node = node[segment] ??= {};
  node[path[path.length - 1]] = value;
}

/** Environment variable → what it does to a raw configuration: generated from SETTINGS. */
export const ENVIRONMENT: Readonly<Record<string, (target: Record<string, any>, raw: string) => void>> = Object.fromEntries(
  SETTINGS.flatMap((setting) => [
    ...setting.names.map((name) => [name, (target: Record<string, any>, raw: string) => setAt(target, setting.path, PARSERS[setting.type](raw, name))] as const),
    ...(setting.fileName ? [[setting.fileName, (target: Record<string, any>, raw: string) => setAt(target, setting.path, listFromFile(raw, setting.fileName!))] as const] : []),
  ]),
);
