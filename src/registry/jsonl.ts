import { candidateAdapters, RegistryError, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from './types.js';

const KNOWN_FIELDS = new Set(['task', 'inputs', 'domain', 'adapter', 'targets']);

/**
 * One example a line: {"task", "inputs", "domain"?, "adapter"?, "targets"?} — the format of the
 * FLAN task pool released with LoraRetriever. A task's adapter is `adapter` when given, else its own id.
 * A line with "task": null is a base example: a prompt that belongs to the base model.
 */
export function parseTaskExamplesJsonl(source: string, file: string): TaskRegistry {
  const tasks = new Map<string, TaskDefinition & { adapterLine?: number }>();
  const baseExamples: string[] = [];
  const lines = source.split(/\r?\n/);
  lines.forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (error) {
      throw new RegistryError(file, lineNumber, `invalid JSON (${(error as Error).message})`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new RegistryError(file, lineNumber, 'each line must be a JSON object');
    }
    const record = row as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!KNOWN_FIELDS.has(key)) throw new RegistryError(file, lineNumber, `unknown field "${key}"`);
    }
    const requireString = (key: string, optional: boolean): string | undefined => {
      const value = record[key];
      if (value === undefined && optional) return undefined;
      if (typeof value !== 'string' || value.trim() === '') {
        throw new RegistryError(file, lineNumber, `"${key}" must be a non-empty string`);
      }
      return value;
    };
    const inputs = requireString('inputs', false)!;
    if (record.task === null) {
      if (record.adapter !== undefined || record.domain !== undefined) throw new RegistryError(file, lineNumber, 'a base example ("task": null) takes no "adapter" or "domain"');
      baseExamples.push(inputs);
      return;
    }
    const taskId = requireString('task', false)!;
    const domain = requireString('domain', true);
    const adapter = requireString('adapter', true);
    if (record.targets !== undefined && typeof record.targets !== 'string') {
      throw new RegistryError(file, lineNumber, '"targets" must be a string');
    }
    let task = tasks.get(taskId);
    if (!task) {
      task = { id: taskId, domain, examples: [], adapterScores: {} };
      tasks.set(taskId, task);
    }
    if (domain !== undefined && task.domain !== undefined && task.domain !== domain) {
      throw new RegistryError(file, lineNumber, `task "${taskId}" has domain "${task.domain}" on an earlier line, "${domain}" here`);
    }
    task.domain ??= domain;
    if (adapter !== undefined) {
      const previous = Object.keys(task.adapterScores)[0];
      if (previous !== undefined && previous !== adapter) {
        throw new RegistryError(file, lineNumber, `task "${taskId}" maps to adapter "${previous}" on line ${task.adapterLine}, "${adapter}" here`);
      }
      task.adapterScores = { [adapter]: 1 };
      task.adapterLine ??= lineNumber;
    }
    task.examples.push(inputs);
    (task.targets ??= []).push((record.targets as string | undefined) ?? null);
  });
  if (tasks.size === 0) throw new RegistryError(file, undefined, 'no tasks found');
  const taskList: TaskDefinition[] = [...tasks.values()].map(({ adapterLine: _, targets, ...task }) =>
    targets?.some((target) => target !== null) ? { ...task, targets } : task,
  );
  const adapters = new Map<string, AdapterDefinition>();
  for (const task of taskList) {
    for (const id of candidateAdapters(task)) {
      adapters.set(id, { id });
    }
  }
  return { tasks: taskList, adapters, baseExamples, source: file };
}

/**
 * The registry as JSONL lines, when that format can hold it (one adapter per task, adapters known
 * by id only, no descriptions or metrics); undefined otherwise.
 */
export function serializeTaskExamplesJsonl(registry: TaskRegistry): string | undefined {
  const plainAdapters = [...registry.adapters.values()].every((adapter) => Object.keys(adapter).every((key) => key === 'id'));
  const plainTasks = registry.tasks.every((task) => Object.keys(task.adapterScores).length <= 1 && !task.description && !task.metric);
  if (!plainAdapters || !plainTasks) return undefined;
  const lines: string[] = [];
  for (const task of registry.tasks) {
    const adapter = Object.keys(task.adapterScores)[0];
    task.examples.forEach((inputs, i) => {
      const target = task.targets?.[i];
      lines.push(JSON.stringify({ task: task.id, inputs, ...(task.domain ? { domain: task.domain } : {}), ...(adapter ? { adapter } : {}), ...(target != null ? { targets: target } : {}) }));
    });
  }
  for (const inputs of registry.baseExamples ?? []) lines.push(JSON.stringify({ task: null, inputs }));
  return `${lines.join('\n')}\n`;
}
