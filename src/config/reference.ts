import { SETTINGS, type Setting } from './environment.js';

const SECTIONS: Record<string, string> = {
  '': 'Server, routing and security',
  encoder: 'Encoder (`encoder`)',
  registry: 'Registry at run time (`registry`)',
  rateLimit: 'Rate limit (`rateLimit`)',
  cache: 'Caches and Redis (`cache`)',
  upstream: 'Upstream and composition (`upstream`)',
};

const code = (value: unknown) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

function allowed(setting: Setting): string {
  const { schema } = setting;
  const choices = (schema.anyOf ?? []).map((choice) => choice.const).filter((value) => value !== undefined);
  if (choices.length > 0) return choices.map(code).join(', ');
  const item = setting.type === 'list' ? (schema.items ?? {}) : schema;
  const bounds: string[] = [];
  if (item.minimum !== undefined) bounds.push(`≥ ${item.minimum}`);
  if (item.exclusiveMinimum !== undefined) bounds.push(`> ${item.exclusiveMinimum}`);
  if (item.maximum !== undefined) bounds.push(`≤ ${item.maximum}`);
  if (item.minLength !== undefined && Number(item.minLength) > 1) bounds.push(`at least ${item.minLength} characters`);
  const prefix = setting.type === 'list' ? 'each ' : '';
  return bounds.length > 0 ? prefix + bounds.join(', ') : '';
}

function typeName(setting: Setting): string {
  if (setting.type === 'toggle') return 'on/off';
  if (setting.type === 'list') return 'comma-separated list';
  return setting.type === 'text' ? 'text' : setting.type;
}

/** docs/configuration.md: every setting of the schema, its variables beside its key, type, default, limits and meaning. */
export function configurationReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from the configuration schema (src/config/schema.ts and each upstream kind\'s settings.ts) by',
    '     `npm run config-reference`; a test fails when it is stale. -->',
    '',
    'Each setting is read, in order of precedence, from: explicit overrides (tests), its environment variable,',
    'the config file named by `LORAUTER_CONFIG` (YAML or JSON, keys as in the *Key* column, nested by section),',
    'then its default. A bad value stops the gateway at start-up with a message naming the setting.',
    'On/off settings take `on`, `true`, `1`, `yes` or `off`, `false`, `0`, `no`.',
    '',
  ];
  for (const [section, title] of Object.entries(SECTIONS)) {
    const settings = SETTINGS.filter((setting) => (setting.path.length === 1 ? '' : setting.path[0]) === section);
    lines.push(`## ${title}`, '', '| Variable | Key | Type | Default | Allowed | Description |', '|---|---|---|---|---|---|');
    for (const setting of settings) {
      const names = [...setting.names.map((name) => `\`${name}\``), ...(setting.fileName ? [`\`${setting.fileName}\` (a file)`] : [])];
      const fallback = setting.schema.default === undefined ? 'unset' : code(setting.schema.default);
      lines.push(`| ${names.join('<br>')} | \`${setting.path.join('.')}\` | ${typeName(setting)} | ${fallback} | ${cell(allowed(setting))} | ${cell(String(setting.schema.description ?? ''))} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
