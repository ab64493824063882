import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import YAML, { LineCounter } from 'yaml';
import { candidateAdapters, RegistryError, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from './types.js';

const Id = Type.String({ minLength: 1, pattern: '^[^\\s,=]+$' });

const RegistryDocument = Type.Object(
  {
    adapters: Type.Optional(
      Type.Array(
        Type.Object(
          {
            id: Id,
            path: Type.Optional(Type.String({ minLength: 1 })),
            upstream_name: Type.Optional(Type.String({ minLength: 1 })),
            llamacpp_name: Type.Optional(Type.String({ minLength: 1 })),
            description: Type.Optional(Type.String()),
          },
          { additionalProperties: false },
        ),
      ),
    ),
    base_examples: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    tasks: Type.Array(
      Type.Object(
        {
          id: Id,
          description: Type.Optional(Type.String()),
          domain: Type.Optional(Type.String({ minLength: 1 })),
          examples: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
          adapters: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.Number())),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
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
    adapters.set(adapter.id, {
      id: adapter.id,
      path: adapter.path,
      upstreamName: adapter.upstream_name,
      llamaCppName: adapter.llamacpp_name,
    });
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
    return { id: task.id, domain: task.domain, description: task.description, examples: task.examples, adapterScores };
  });
  return { tasks, adapters, baseExamples: document.base_examples ?? [], source: file };
}
