import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import YAML, { LineCounter } from 'yaml';
import { candidateAdapters, RegistryError, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from './types.js';

const Id = Type.String({ minLength: 1, pattern: '^[^\\s,=]+$' });

const Metric = Type.Union([Type.Literal('exact'), Type.Literal('rouge_l'), Type.Literal('bleu')]);

/** An adapter as the registry file (and the admin API, without `id`) writes it. */
export const AdapterFields = {
  path: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  upstream_name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  llamacpp_name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  rank: Type.Optional(Type.Integer({ minimum: 1, maximum: 65536 })),
  alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e6 })),
  description: Type.Optional(Type.String({ maxLength: 4096 })),
};

/** A task as the registry file (and the admin API, without `id`) writes it. */
export const TaskFields = {
  description: Type.Optional(Type.String({ maxLength: 4096 })),
  domain: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  examples: Type.Array(Type.String({ minLength: 1, maxLength: 65536 }), { minItems: 1, maxItems: 10000 }),
  adapters: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.Number(), { maxProperties: 10000 })),
  targets: Type.Optional(Type.Array(Type.Union([Type.String({ maxLength: 65536 }), Type.Null()]), { maxItems: 10000 })),
  metric: Type.Optional(Metric),
};

const RegistryDocument = Type.Object(
  {
    adapters: Type.Optional(Type.Array(Type.Object({ id: Id, ...AdapterFields }, { additionalProperties: false }))),
    base_examples: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    tasks: Type.Array(Type.Object({ id: Id, ...TaskFields }, { additionalProperties: false }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
type RegistryDocument = Static<typeof RegistryDocument>;

/** The human-written registry: YAML or JSON with `tasks` (examples, calibration scores) and `adapters`. */
export function parseRegistryDocument(source: string, file: string): TaskRegistry {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) => (offset === undefined ? undefined : lineCounter.linePos(offset).line);
  if (doc.errors.length > 0) {
    const error = doc.errors[0];
    throw new RegistryError(file, lineOf(error.pos[0]), error.message.split('\n')[0]);
  }
  const data = doc.toJS() as unknown;
  const lineAt = (path: (string | number)[]): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return lineOf(node.range[0]);
    }
    return undefined;
  };
  const issue = [...Value.Errors(RegistryDocument, data ?? {})][0] as { instancePath: string; message: string; keyword: string } | undefined;
  if (issue) {
    const path = issue.instancePath.split('/').slice(1).map((part) => (/^\d+$/.test(part) ? Number(part) : part));
    const where = path.length ? path.join('.') : '(root)';
    const message = issue.keyword === 'boolean' ? 'unknown key' : issue.message;
    throw new RegistryError(file, lineAt(path), `${where}: ${message}`);
  }
  return toRegistry(data as RegistryDocument, file, lineAt);
}

function toRegistry(document: RegistryDocument, file: string, lineAt: (path: (string | number)[]) => number | undefined): TaskRegistry {
  const adapters = new Map<string, AdapterDefinition>();
  (document.adapters ?? []).forEach((adapter, index) => {
    if (adapters.has(adapter.id)) throw new RegistryError(file, lineAt(['adapters', index, 'id']), `duplicate adapter id "${adapter.id}"`);
    adapters.set(adapter.id, adapterFromDocument(adapter.id, adapter));
  });
  const declared = document.adapters !== undefined;
  const seen = new Set<string>();
  const tasks: TaskDefinition[] = document.tasks.map((task, index) => {
    if (seen.has(task.id)) throw new RegistryError(file, lineAt(['tasks', index, 'id']), `duplicate task id "${task.id}"`);
    seen.add(task.id);
    const adapterScores = { ...(task.adapters ?? {}) };
    for (const adapter of Object.keys(adapterScores)) {
      if (declared && !adapters.has(adapter) && adapter !== task.id) {
        throw new RegistryError(file, lineAt(['tasks', index, 'adapters', adapter]), `task "${task.id}" scores unknown adapter "${adapter}"`);
      }
    }
    for (const adapter of candidateAdapters({ id: task.id, adapterScores })) {
      if (!adapters.has(adapter)) adapters.set(adapter, { id: adapter });
    }
    if (task.targets && task.targets.length !== task.examples.length) {
      throw new RegistryError(file, lineAt(['tasks', index, 'targets']), `task "${task.id}" has ${task.examples.length} examples and ${task.targets.length} targets`);
    }
    return taskFromDocument(task.id, task);
  });
  return { tasks, adapters, baseExamples: document.base_examples ?? [], source: file };
}

type AdapterDocument = Static<ReturnType<typeof Type.Object<typeof AdapterFields>>>;
type TaskDocument = Static<ReturnType<typeof Type.Object<typeof TaskFields>>>;

const withoutUndefined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

export function adapterFromDocument(id: string, adapter: AdapterDocument): AdapterDefinition {
  return withoutUndefined({
    id,
    path: adapter.path,
    upstreamName: adapter.upstream_name,
    llamaCppName: adapter.llamacpp_name,
    rank: adapter.rank,
    alpha: adapter.alpha,
    description: adapter.description,
  });
}

export function adapterToDocument(adapter: AdapterDefinition): AdapterDocument & { id: string } {
  return withoutUndefined({
    id: adapter.id,
    path: adapter.path,
    upstream_name: adapter.upstreamName,
    llamacpp_name: adapter.llamaCppName,
    rank: adapter.rank,
    alpha: adapter.alpha,
    description: adapter.description,
  });
}

export function taskFromDocument(id: string, task: TaskDocument): TaskDefinition {
  return withoutUndefined({
    id,
    domain: task.domain,
    description: task.description,
    examples: task.examples,
    adapterScores: { ...(task.adapters ?? {}) },
    targets: task.targets,
    metric: task.metric,
  });
}

export function taskToDocument(task: TaskDefinition): TaskDocument & { id: string } {
  return withoutUndefined({
    id: task.id,
    description: task.description,
    domain: task.domain,
    examples: task.examples,
    adapters: Object.keys(task.adapterScores).length > 0 ? task.adapterScores : undefined,
    targets: task.targets,
    metric: task.metric,
  });
}

/** The registry in the file format: YAML, or JSON when `format` is json. */
export function serializeRegistryDocument(registry: TaskRegistry, format: 'yaml' | 'json'): string {
  const document = {
    adapters: [...registry.adapters.values()].map(adapterToDocument),
    ...(registry.baseExamples?.length ? { base_examples: registry.baseExamples } : {}),
    tasks: registry.tasks.map(taskToDocument),
  };
  return format === 'json' ? `${JSON.stringify(document, null, 2)}\n` : YAML.stringify(document, { lineWidth: 0 });
}
