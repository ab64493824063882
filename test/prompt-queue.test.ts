import t from 'tap';
import { Worker } from 'node:worker_threads';
import { PromptQueue, PromptQueueWorker } from '../src/encoders/builtin/prompt-queue.js';

t.test('prompts are claimed oldest first, by one claimant each, and their text comes back unit for unit', async (t) => {
  const queue = PromptQueue.create(8, 1000, 4);
  const thread = new PromptQueueWorker(queue.memory, 2, () => {});
  const texts = ['first', 'a\ud800b: a lone surrogate', '', '日本語 🚉', 'fifth'];
  const slots = texts.map((text) => queue.place(text));
  t.equal(new Set(slots).size, 5, 'five slots');
  const first = thread.next();
  t.equal(first, slots[0], 'the thread gets the oldest');
  t.equal(thread.text(first), 'first');
  t.equal(queue.owner(first), 2, 'held by thread 2');
  t.notOk(queue.claim(first), 'the event loop cannot claim a held slot');
  t.equal(queue.claimOldest(), slots[1], 'the event loop gets the next oldest');
  t.equal(queue.owner(slots[1]), -1);
  const rest = [thread.next(), thread.next(), thread.next()];
  t.same(rest, slots.slice(2), 'then in order');
  t.same(rest.map((slot) => thread.text(slot)), texts.slice(2), 'texts as placed, surrogate pairs and empty text included');
  t.equal(queue.claimOldest(), -1, 'nothing left');
  t.notOk(queue.hasQueued());
  t.equal(queue.heldByThreads(), 4);
  t.ok(queue.takeBack(first, 2), 'taken back from its thread');
  t.notOk(queue.takeBack(slots[2], 3), 'not from a thread that does not hold it');
  t.equal(queue.heldByThreads(), 3);
});

t.test('a thread writes only into a slot it still holds: one taken back and reused keeps its new result', async (t) => {
  const queue = PromptQueue.create(2, 100, 3);
  const thread = new PromptQueueWorker(queue.memory, 1, () => {});
  const slot = queue.place('slow prompt');
  t.equal(thread.next(), slot);
  // The event loop gives up on the thread, encodes the prompt itself, delivers it and frees the slot.
  t.ok(queue.takeBack(slot, 1), 'taken back while the thread encodes');
  queue.release(slot);
  // The slot is reused for another prompt, which the event loop claims and encodes.
  t.equal(queue.place('next prompt'), slot, 'the same slot, reused');
  t.ok(queue.claim(slot));
  // The slow thread finishes its old prompt now: it must not write over the slot.
  t.notOk(thread.deliver(slot, Float32Array.of(9, 9, 9)), 'the late vector is dropped');
  t.same([...new Float32Array(queue.memory.results, slot * 3 * 4, 3)], [0, 0, 0], 'nothing written');
  t.notOk(queue.isDone(slot));
  queue.release(slot);

  // In time: written, then done, and its owner is known until then.
  const again = queue.place('quick prompt');
  t.equal(thread.next(), again);
  t.equal(queue.owner(again), 1);
  t.ok(thread.deliver(again, Float32Array.of(1, 2, 3)));
  t.ok(queue.isDone(again));
  t.same([...queue.result(again)], [1, 2, 3]);
  t.notOk(queue.takeBack(again, 1, true), 'a done slot is not taken back, even from a stopped thread');
});

t.test('the text ring reclaims space in placing order; a full queue says so', async (t) => {
  const queue = PromptQueue.create(4, 10, 1);
  const a = queue.place('aaaa');
  const b = queue.place('bbbb');
  t.equal(queue.place('ccc'), -1, 'no room for 3 more units of 10');
  t.ok(queue.place('cc') >= 0, 'the last 2 units');
  t.equal(queue.place(''), -1, 'an empty text takes a unit too');
  t.ok(queue.claim(b));
  queue.release(b);
  t.equal(queue.place('ccccc'), -1, 'b freed, but a, placed before it, still holds the start of the ring');
  t.ok(queue.claim(a));
  queue.release(a);
  t.equal(queue.place('ddddddddd'), -1, 'a and b freed: 8 units before cc, not 9');
  const d = queue.place('dddddddd');
  t.ok(d >= 0, 'wrapped to the start');
  const thread = new PromptQueueWorker(queue.memory, 0, () => {});
  t.equal(thread.text(thread.next()), 'cc');
  t.equal(thread.text(thread.next()), 'dddddddd');
  t.equal(queue.place('x'.repeat(11)), -1, 'longer than the ring');
  t.equal(queue.textCapacity, 10);
});

t.test('a slot freed out of order is reused at once; its new text is not reclaimed with its old range', async (t) => {
  const queue = PromptQueue.create(3, 12, 1);
  const thread = new PromptQueueWorker(queue.memory, 0, () => {});
  const a = queue.place('aaaa');
  const b = queue.place('bbbb');
  t.ok(queue.claim(b));
  queue.release(b);
  const d = queue.place('dd');
  t.equal(d, b, 'the freed slot is reused');
  t.ok(queue.claim(a));
  queue.release(a);
  // a and b's old range are reclaimed; d's text, after them in the ring, must still hold.
  const e = queue.place('eeeeee');
  t.ok(e >= 0, 'the start of the ring is free again');
  t.equal(thread.text(thread.next()), 'dd', 'the reused slot keeps its new text');
  t.equal(thread.text(thread.next()), 'eeeeee');
  t.equal(queue.place('ffff'), -1, 'd and e still hold 8 of 12 units, after the wrap: no room for 4 between e and d');
});

t.test('a reused slot freed before the ranges ahead of its old one: all the ring comes back', async (t) => {
  const queue = PromptQueue.create(3, 12, 1);
  const a = queue.place('aaaa');
  const b = queue.place('bbbb');
  t.ok(queue.claim(b));
  queue.release(b);
  const d = queue.place('dd');
  t.equal(d, b);
  t.ok(queue.claim(d));
  queue.release(d);
  t.ok(queue.claim(a));
  queue.release(a);
  t.ok(queue.place('x'.repeat(12)) >= 0, 'every text freed: the whole ring is free');
});

t.test('wraps around the ring without overwriting a text still queued', async (t) => {
  const queue = PromptQueue.create(8, 12, 1);
  const thread = new PromptQueueWorker(queue.memory, 0, () => {});
  const placed = new Map<number, string>();
  let next = 0;
  // Keeps placing and freeing texts of varying length; every text read back must be the one placed.
  for (let round = 0; round < 200; round++) {
    const text = String.fromCharCode(97 + (round % 26)).repeat(1 + (round % 5));
    const slot = queue.place(text);
    if (slot >= 0) placed.set(slot, text);
    if (slot < 0 || round % 3 === 0) {
      const claimed = thread.next();
      t.equal(thread.text(claimed), placed.get(claimed), `round ${round}`);
      queue.takeBack(claimed, 0);
      queue.release(claimed);
      placed.delete(claimed);
      next++;
    }
  }
  t.ok(next > 50, `${next} texts went round`);
});

t.test('a thread encodes into the shared results, announces once until acknowledged, and sleeps on an empty queue', async (t) => {
  const queue = PromptQueue.create(16, 4096, 3);
  const script = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.tsx).then(({ tsImport }) => tsImport(workerData.module, workerData.module)).then(({ PromptQueueWorker }) => {
      new PromptQueueWorker(workerData.memory, 0, () => parentPort.postMessage('encoded'))
        .serve((text) => Float32Array.of(text.length, text.charCodeAt(0), 7));
    });`;
  const worker = new Worker(script, { eval: true, workerData: { memory: queue.memory, module: new URL('../src/encoders/builtin/prompt-queue.ts', import.meta.url).href, tsx: import.meta.resolve('tsx/esm/api') } });
  t.teardown(() => worker.terminate());
  let announcements = 0;
  worker.on('message', () => announcements++);
  const done = async (slot: number) => {
    while (!queue.isDone(slot)) await new Promise((resolve) => setTimeout(resolve, 2));
  };
  const first = queue.place('hello');
  await done(first);
  t.same([...queue.result(first)], [5, 104, 7]);
  const second = queue.place('xy');
  await done(second);
  t.same([...queue.result(second)], [2, 120, 7]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(announcements, 1, 'one announcement while the event loop has not acknowledged');
  queue.acknowledge();
  queue.release(first);
  queue.release(second);
  // Placed after a pause: the thread was asleep and must be woken.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const third = queue.place('z');
  await done(third);
  t.same([...queue.result(third)], [1, 122, 7]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(announcements, 2, 'announced again after the acknowledgement');
  const copy = queue.result(third);
  copy[0] = 99;
  t.equal(queue.result(third)[0], 1, 'results are copies');
});
