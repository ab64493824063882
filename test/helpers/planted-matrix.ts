import { createHash } from 'node:crypto';
import type { TaskRegistry } from '../../src/registry/types.js';

export interface PlantedShape {
  name: string;
  /** Accuracy of candidate `adapter` on task `task`, given the task's planted best and own adapter. */
  accuracy: (adapter: string, roles: { best: string; runnerUp: string; own: string }) => number;
}

/** The hub-scale shapes: 20 tasks, each with its own adapter among 300 candidates, 20 examples a task. */
export const PLANTED_SHAPES: PlantedShape[] = [
  { name: 'one strong (0.9) among weak (0.1), own 0.55', accuracy: (adapter, { best, own }) => (adapter === best ? 0.9 : adapter === own ? 0.55 : 0.1) },
  { name: 'two close (0.9 and 0.8), own 0.55, the rest 0.1', accuracy: (adapter, { best, runnerUp, own }) => (adapter === best ? 0.9 : adapter === runnerUp ? 0.8 : adapter === own ? 0.55 : 0.1) },
  { name: 'none better than its own (0.55), the rest 0.1-0.3', accuracy: (adapter, { best }) => (adapter === best ? 0.55 : 0.1 + 0.2 * (unit(`${adapter}`) % 1)) },
];

function unit(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * A registry of `tasks` tasks whose candidates are their own adapters plus hub adapters (`candidates` in all), and
 * an upstream stand-in that answers each prompt right with the planted probability (the same answer every time).
 */
export function plantedMatrix(shape: PlantedShape, tasks = 20, candidates = 300, examples = 20) {
  const own = Array.from({ length: tasks }, (_, i) => `task-${i}`);
  const hub = Array.from({ length: candidates - tasks }, (_, i) => `hub-${String(i).padStart(3, '0')}`);
  const best = new Map<string, string>();
  const accuracy = new Map<string, number>();
  const targetOf = new Map<string, { task: string; target: string }>();
  const registry: TaskRegistry = { tasks: [], adapters: new Map([...own, ...hub].map((id) => [id, { id }])), source: `planted: ${shape.name}` };
  own.forEach((task, i) => {
    const roles = { best: hub[(i * 13) % hub.length], runnerUp: hub[(i * 13 + 7) % hub.length], own: task };
    // "none better than its own": the own adapter is the one to find.
    const planted = shape.accuracy(roles.own, roles) > shape.accuracy(roles.best, roles) ? roles.own : roles.best;
    best.set(task, planted);
    for (const adapter of [...own, ...hub]) accuracy.set(`${task}/${adapter}`, shape.accuracy(adapter, roles));
    const prompts = Array.from({ length: examples }, (_, e) => `Question ${e} of planted task ${i}: which label fits?`);
    const targets = prompts.map((_, e) => `label ${(i + e) % 3}`);
    prompts.forEach((prompt, e) => targetOf.set(prompt, { task, target: targets[e] }));
    registry.tasks.push({ id: task, examples: prompts, targets, adapterScores: {} });
  });
  let calls = 0;
  const ask = async (adapter: string, prompt: string) => {
    calls++;
    const { task, target } = targetOf.get(prompt)!;
    return unit(`${prompt}\u0000${adapter}`) < accuracy.get(`${task}/${adapter}`)! ? target : 'something else entirely';
  };
  return { registry, best, ask, calls: () => calls, fullMatrixCalls: tasks * candidates * examples };
}

