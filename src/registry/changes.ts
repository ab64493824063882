import { createHash } from 'node:crypto';
import { adapterToDocument, taskToDocument } from './document.js';
import { candidateAdapters, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from './types.js';

/**
 * One edit of the registry, as the admin API makes it. `ifMatch`: the entity tag the writer last
 * read (or "*": it must exist); a change made since fails with 412 instead of being overwritten.
 */
export type RegistryChange = { ifMatch?: string } & (
  | { op: 'put_task'; task: TaskDefinition }
  | { op: 'delete_task'; id: string }
  | { op: 'put_adapter'; adapter: AdapterDefinition }
  | { op: 'delete_adapter'; id: string }
);

/** How a task or adapter is stored (the Redis field's value); its SHA-1 is the entity tag. */
export const storedTask = (task: TaskDefinition) => JSON.stringify(taskToDocument(task));
export const storedAdapter = (adapter: AdapterDefinition) => JSON.stringify(adapterToDocument(adapter));
export const entityTag = (stored: string) => createHash('sha1').update(stored).digest('hex');

/** What a change is about: a task or an adapter, by id. */
export function changeTarget(change: RegistryChange): { kind: 'task' | 'adapter'; id: string } {
  switch (change.op) {
    case 'put_task':
      return { kind: 'task', id: change.task.id };
    case 'put_adapter':
      return { kind: 'adapter', id: change.adapter.id };
    case 'delete_task':
      return { kind: 'task', id: change.id };
    case 'delete_adapter':
      return { kind: 'adapter', id: change.id };
  }
}

/** The entity a change is about, as stored now; undefined when it does not exist. */
export function storedEntity(registry: TaskRegistry, change: RegistryChange): string | undefined {
  const { kind, id } = changeTarget(change);
  if (kind === 'task') {
    const task = registry.tasks.find((candidate) => candidate.id === id);
    return task && storedTask(task);
  }
  const adapter = registry.adapters.get(id);
  return adapter && storedAdapter(adapter);
}

export const preconditionFailed = () =>
  new RegistryChangeError(412, 'precondition_failed', 'It was changed since you read it (If-Match does not match its ETag): read it again and reapply your change.');

/** A change the registry cannot take; `status` is the HTTP status the admin API answers with. */
export class RegistryChangeError extends Error {
  override name = 'RegistryChangeError';
  constructor(
    readonly status: 404 | 409 | 412,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Tasks whose routing depends on an adapter. */
export function tasksUsing(registry: TaskRegistry, adapterId: string): string[] {
  return registry.tasks.filter((task) => candidateAdapters(task).includes(adapterId)).map((task) => task.id);
}

/** Checks a change against the registry; throws RegistryChangeError when it cannot be made. */
export function checkChange(registry: TaskRegistry, change: RegistryChange): void {
  if (change.ifMatch !== undefined) {
    const current = storedEntity(registry, change);
    if (current === undefined || (change.ifMatch !== '*' && entityTag(current) !== change.ifMatch)) throw preconditionFailed();
  }
  switch (change.op) {
    case 'put_task':
    case 'put_adapter':
      return;
    case 'delete_task':
      if (!registry.tasks.some((task) => task.id === change.id)) throw new RegistryChangeError(404, 'task_not_found', `no task "${change.id}"`);
      if (registry.tasks.length === 1) throw new RegistryChangeError(409, 'last_task', `"${change.id}" is the last task; the router needs at least one (add another first)`);
      return;
    case 'delete_adapter': {
      if (!registry.adapters.has(change.id)) throw new RegistryChangeError(404, 'adapter_not_found', `no adapter "${change.id}"`);
      const users = tasksUsing(registry, change.id);
      if (users.length > 0) {
        const shown = users.slice(0, 10).join(', ') + (users.length > 10 ? ', …' : '');
        throw new RegistryChangeError(409, 'adapter_in_use', `adapter "${change.id}" is used by task${users.length > 1 ? 's' : ''} ${shown}: change or delete them first`);
      }
      return;
    }
  }
}

/** The registry after a change (a new object; the one given is not modified). */
export function applyChange(registry: TaskRegistry, change: RegistryChange): TaskRegistry {
  checkChange(registry, change);
  const adapters = new Map(registry.adapters);
  let tasks = registry.tasks;
  switch (change.op) {
    case 'put_task': {
      const at = tasks.findIndex((task) => task.id === change.task.id);
      tasks = at >= 0 ? tasks.map((task, i) => (i === at ? change.task : task)) : [...tasks, change.task];
      // The adapters the task names (scored, or its own) become known, as in a registry file.
      for (const id of candidateAdapters(change.task)) if (!adapters.has(id)) adapters.set(id, { id });
      break;
    }
    case 'delete_task':
      tasks = tasks.filter((task) => task.id !== change.id);
      break;
    case 'put_adapter':
      adapters.set(change.adapter.id, change.adapter);
      break;
    case 'delete_adapter':
      adapters.delete(change.id);
      break;
  }
  return { ...registry, tasks, adapters };
}
