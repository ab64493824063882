import type { Redis } from 'ioredis';
import { boundedRedis, whenReady } from '../../redis.js';
import type { Logger } from 'pino';
import { adapterFromDocument, taskFromDocument } from '../document.js';
import { changeTarget, checkChange, preconditionFailed, storedAdapter, storedTask, type RegistryChange } from '../changes.js';
import { candidateAdapters, type AdapterDefinition, type TaskDefinition, type TaskRegistry } from '../types.js';
import { RegistryUnavailableError, type RegistrySnapshot, type RegistryStore } from './store.js';

export interface RedisRegistryOptions {
  url: string;
  keyPrefix: string;
  /** Bound on every Redis command. */
  timeoutMs: number;
  /** How often the version is checked besides pub/sub (a notice missed while disconnected). */
  pollMs: number;
}

type FieldOp = ['ifmatch' | 'set' | 'setnx' | 'del', string, string];

// One atomic write: the fields, the version, the notice. "seed" writes only into an empty store;
// "replace" clears the registry first (and does nothing when the file hash it carries first is
// the one stored); "change" edits the given fields only, so that two writers
// changing different tasks never undo each other. The version never falls below the writer's
// (a Redis that lost its data restarts from the replicas' version, so they all take the seed).
// "ifmatch" ops come first: the field must exist ("*") or hash to the entity tag the writer read.
const WRITE_SCRIPT = `
local mode, floor = ARGV[2], tonumber(ARGV[3])
if mode == 'seed' and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
-- A change to an emptied store (Redis lost its data) would leave the registry that change alone.
if mode == 'change' and redis.call('EXISTS', KEYS[2]) == 0 then return -3 end
-- A file every replica reloads is written once: by the first replica to see that content.
if mode == 'replace' and ARGV[6] ~= '' and ARGV[5] == 'meta:file_hash' and redis.call('HGET', KEYS[1], 'meta:file_hash') == ARGV[6] then return -1 end
if mode ~= 'change' then redis.call('DEL', KEYS[1]) end
for i = 4, #ARGV, 3 do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'ifmatch' then
    local current = redis.call('HGET', KEYS[1], field)
    if not current or (value ~= '*' and redis.sha1hex(current) ~= value) then return -2 end
  elseif op == 'set' then redis.call('HSET', KEYS[1], field, value)
  elseif op == 'setnx' then redis.call('HSETNX', KEYS[1], field, value)
  else redis.call('HDEL', KEYS[1], field) end
end
local version = redis.call('INCR', KEYS[2])
if version <= floor then
  version = floor + 1
  redis.call('SET', KEYS[2], version)
end
redis.call('PUBLISH', ARGV[1], version)
return version
`;

const TASK = 'task:';
const ADAPTER = 'adapter:';
const BASE_EXAMPLES = 'meta:base_examples';
const FILE_HASH = 'meta:file_hash';

/**
 * The registry in Redis, shared by every replica: a hash of tasks and adapters (one field each),
 * a version counter, and a pub/sub channel that announces each new version. A replica that starts
 * later reads the whole hash; one that missed a notice catches up on its next poll.
 */
export class RedisRegistryStore implements RegistryStore {
  readonly kind = 'redis';
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly keys: { entries: string; version: string; channel: string };
  private readonly listeners: ((snapshot: RegistrySnapshot) => void)[] = [];
  private latest: RegistrySnapshot | undefined;
  private poller: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private source = 'redis';

  constructor(
    private readonly options: RedisRegistryOptions,
    private readonly logger: Logger,
  ) {
    this.client = boundedRedis(options.url, options.timeoutMs);
    // Subscribing needs a connection of its own; ioredis re-subscribes after a reconnect.
    this.subscriber = boundedRedis(options.url, options.timeoutMs, { commandTimeout: undefined, enableOfflineQueue: true });
    this.client.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.keys = { entries: `${options.keyPrefix}entries`, version: `${options.keyPrefix}version`, channel: `${options.keyPrefix}changes` };
    this.subscriber.on('message', (_channel, message) => {
      if (Number(message) > (this.latest?.version ?? 0)) void this.refresh();
    });
    void this.subscriber.subscribe(this.keys.channel).catch(() => {});
  }

  async open(initial: TaskRegistry, fileHash?: string): Promise<RegistrySnapshot> {
    this.source = `redis (seeded from ${initial.source})`;
    this.poller = setInterval(() => void this.refresh(initial), this.options.pollMs);
    this.poller.unref();
    const waitMs = Math.max(this.options.timeoutMs, 1000);
    if (!(await whenReady(this.client, waitMs))) throw new RegistryUnavailableError(`registry store (Redis) not reachable within ${waitMs} ms`);
    const seeded = await this.write('seed', fieldsOf(initial, fileHash));
    if (seeded > 0) this.logger.info({ version: seeded, source: initial.source }, 'registry stored in Redis');
    return this.load();
  }

  async apply(change: RegistryChange): Promise<RegistrySnapshot> {
    for (let attempt = 0; ; attempt++) {
      // Checked against the newest stored state; the write itself touches only the changed fields.
      const current = await this.load();
      checkChange(current.registry, change);
      const version = await this.write('change', fieldOpsOf(change, current.registry));
      if (version === -2) throw preconditionFailed();
      if (version === -3) {
        // Redis lost the registry and the poll has not re-seeded it yet: store the one this replica runs, then the change.
        if (attempt > 0) throw new RegistryUnavailableError('registry store (Redis) lost its data and could not be seeded again');
        await this.write('seed', fieldsOf(current.registry));
        continue;
      }
      // The version this write made (the registry loaded may already hold later writes too).
      return { registry: (await this.load()).registry, version };
    }
  }

  async replace(registry: TaskRegistry, fileHash?: string): Promise<RegistrySnapshot> {
    const version = await this.write('replace', fieldsOf(registry, fileHash));
    // -1: another replica already stored this file.
    if (version < 0) return this.load();
    return { registry: (await this.load()).registry, version };
  }

  onChange(listener: (snapshot: RegistrySnapshot) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.poller);
    await Promise.allSettled([this.client.quit(), this.subscriber.quit()]);
    this.client.disconnect();
    this.subscriber.disconnect();
  }

  /** Loads and announces the stored registry when it is newer than the last one seen; seeds an emptied store. */
  private refresh(seed?: TaskRegistry): Promise<void> {
    return (this.refreshing ??= (async () => {
      try {
        const version = Number((await this.client.get(this.keys.version)) ?? 0);
        if (version === 0 && seed && this.client.status === 'ready') {
          // Redis lost the registry (restart without persistence): store the one this replica runs.
          await this.write('seed', fieldsOf(this.latest?.registry ?? seed));
        }
        if (version > (this.latest?.version ?? 0) || version === 0) await this.load();
      } catch (error) {
        this.logger.debug({ err: error }, 'registry refresh failed');
      } finally {
        this.refreshing = undefined;
      }
    })());
  }

  private async load(): Promise<RegistrySnapshot> {
    const [entries, version] = await this.run(() => this.client.multi().hgetall(this.keys.entries).get(this.keys.version).exec());
    const registry = registryFromFields(entries[1] as Record<string, string>, this.source);
    const snapshot = { registry, version: Number(version[1] ?? 0) };
    if (snapshot.version > (this.latest?.version ?? 0)) {
      this.latest = snapshot;
      for (const listener of this.listeners) listener(snapshot);
    }
    return this.latest ?? snapshot;
  }

  private async write(mode: 'seed' | 'replace' | 'change', ops: FieldOp[]): Promise<number> {
    const result = await this.run(() => this.client.eval(WRITE_SCRIPT, 2, this.keys.entries, this.keys.version, this.keys.channel, mode, this.latest?.version ?? 0, ...ops.flat()));
    return Number(result);
  }

  private async run<T>(command: () => Promise<T> | undefined): Promise<NonNullable<T>> {
    try {
      const result = await command();
      if (result === undefined || result === null) throw new Error('no answer');
      return result as NonNullable<T>;
    } catch (error) {
      throw new RegistryUnavailableError(`registry store (Redis) unavailable: ${(error as Error).message}`);
    }
  }
}

const taskField = (task: TaskDefinition): FieldOp => ['set', TASK + task.id, storedTask(task)];
const adapterField = (adapter: AdapterDefinition, op: 'set' | 'setnx' = 'set'): FieldOp => [op, ADAPTER + adapter.id, storedAdapter(adapter)];

/** Every field of a registry; the hash of the file it came from first, when there is one. */
function fieldsOf(registry: TaskRegistry, fileHash?: string): FieldOp[] {
  return [
    ['set', FILE_HASH, fileHash ?? ''],
    ...registry.tasks.map(taskField),
    ...[...registry.adapters.values()].map((adapter) => adapterField(adapter)),
    ['set', BASE_EXAMPLES, JSON.stringify(registry.baseExamples ?? [])],
  ];
}

function fieldOpsOf(change: RegistryChange, registry: TaskRegistry): FieldOp[] {
  if (change.ifMatch === undefined) return entityOpsOf(change, registry);
  const { kind, id } = changeTarget(change);
  return [['ifmatch', (kind === 'task' ? TASK : ADAPTER) + id, change.ifMatch], ...entityOpsOf(change, registry)];
}

function entityOpsOf(change: RegistryChange, registry: TaskRegistry): FieldOp[] {
  switch (change.op) {
    case 'put_task':
      // The adapters it names become known without replacing ones another writer described.
      return [taskField(change.task), ...candidateAdapters(change.task).filter((id) => !registry.adapters.has(id)).map((id) => adapterField({ id }, 'setnx'))];
    case 'delete_task':
      return [['del', TASK + change.id, '']];
    case 'put_adapter':
      return [adapterField(change.adapter)];
    case 'delete_adapter':
      return [['del', ADAPTER + change.id, '']];
  }
}

/** The registry a hash holds: tasks in id order (the same on every replica), adapters a task names always present. */
function registryFromFields(fields: Record<string, string>, source: string): TaskRegistry {
  const tasks: TaskDefinition[] = [];
  const adapters = new Map<string, AdapterDefinition>();
  for (const field of Object.keys(fields).sort()) {
    if (field.startsWith(TASK)) tasks.push(taskFromDocument(field.slice(TASK.length), JSON.parse(fields[field])));
    if (field.startsWith(ADAPTER)) adapters.set(field.slice(ADAPTER.length), adapterFromDocument(field.slice(ADAPTER.length), JSON.parse(fields[field])));
  }
  for (const task of tasks) for (const id of candidateAdapters(task)) if (!adapters.has(id)) adapters.set(id, { id });
  const baseExamples = fields[BASE_EXAMPLES] ? (JSON.parse(fields[BASE_EXAMPLES]) as string[]) : [];
  return { tasks, adapters, baseExamples, source };
}
