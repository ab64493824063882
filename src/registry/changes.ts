import { candidateAdapters, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from './types.js';

/** One edit of the registry, as the admin API makes it. */
export type RegistryChange =
  | { op: 'put_task'; task: TaskDefinition }
  | { op: 'delete_task'; id: string }
  | { op: 'put_adapter'; adapter: AdapterDefinition }
  | { op: 'delete_adapter'; id: string };

/** A change the registry cannot take; `status` is the HTTP status the admin API answers with. */
export class RegistryChangeError extends Error {
  override name = 'RegistryChangeError';
  constructor(
    readonly status: 404 | 409,
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
