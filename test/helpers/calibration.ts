import { createHash } from 'node:crypto';
import type { Test } from 'tap';
import { startFakeVllm } from '../fakes/vllm.js';
import type { Received } from '../fakes/server.js';

export { cli, entry } from './cli.js';

/** A registry of planted tasks: each has one best adapter (accuracy 0.9) and weaker ones. */
export function plantedRegistry(tasks: number, adapters: number, examples: number) {
  const adapterIds = Array.from({ length: adapters }, (_, i) => `lora-${i}`);
  const accuracy = new Map<string, number>();
  const best = new Map<string, string>();
  const targetOf = new Map<string, { task: string; target: string }>();
  const document = { adapters: adapterIds.map((id) => ({ id })), tasks: [] as unknown[] };
  for (let task = 0; task < tasks; task++) {
    const id = `task-${task}`;
    const planted = adapterIds[(task * 5 + 3) % adapters];
    best.set(id, planted);
    adapterIds.forEach((adapter, a) => accuracy.set(`${id}/${adapter}`, adapter === planted ? 0.9 : 0.1 + ((task * 7 + a * 13) % 10) * 0.05));
    const prompts = Array.from({ length: examples }, (_, i) => `Question ${i} of planted task ${task}: which label fits?`);
    const targets = prompts.map((_, i) => `label ${(task + i) % 3}`);
    prompts.forEach((prompt, i) => targetOf.set(prompt, { task: id, target: targets[i] }));
    document.tasks.push({ id, examples: prompts, targets });
  }
  return { document, adapterIds, accuracy, best, targetOf };
}

/** Deterministic per prompt and adapter: the right target with the planted probability. */
export const plantedAnswer = (planted: ReturnType<typeof plantedRegistry>, prompt: string, adapter: string) => {
  const { task, target } = planted.targetOf.get(prompt)!;
  const u = createHash('sha256').update(`${prompt}\u0000${adapter}`).digest().readUInt32BE(0) / 2 ** 32;
  return u < planted.accuracy.get(`${task}/${adapter}`)! ? target : 'something else entirely';
};


/**
 * `count` fake vLLM replicas that answer with the planted accuracies, stopped when the test ends; `chats(fake)` is
 * how many chat calls a replica answered.
 */
export async function plantedReplicas(t: Test, planted: ReturnType<typeof plantedRegistry>, count: number) {
  const fakes = await Promise.all(Array.from({ length: count }, () => startFakeVllm({ baseModel: 'base', staticAdapters: planted.adapterIds })));
  t.teardown(() => Promise.all(fakes.map((fake) => fake.stop())));
  for (const fake of fakes) fake.behaviour.words = (request: Received, servedBy: string) => [plantedAnswer(planted, request.body.messages[0].content, servedBy)];
  const chats = (fake: (typeof fakes)[number]) => fake.received.filter((request) => request.path === '/v1/chat/completions').length;
  return { fakes, chats };
}
