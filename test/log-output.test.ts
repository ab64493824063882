import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { LogOutput } from '../src/logger.js';

const entry = new URL('../src/cli/entry.ts', import.meta.url).pathname;
const line = (i: number) => `${JSON.stringify({ level: 30, i, msg: 'x'.repeat(200) })}\n`;

/** A FIFO whose reading end is open (non-blocking) but read only when the test says so. */
function fifo(dir: string) {
  const path = join(dir, 'log.fifo');
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  const readAll = () => {
    const chunks: Buffer[] = [];
    const buffer = Buffer.alloc(1 << 16);
    for (;;) {
      try {
        const n = readSync(reader, buffer);
        if (n === 0) break;
        chunks.push(Buffer.from(buffer.subarray(0, n)));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
    }
    return Buffer.concat(chunks).toString();
  };
  return { writer, readAll, close: () => [reader, writer].forEach((fd) => closeSync(fd)) };
}

t.test('a log reader that stops reading: lines beyond the buffer are dropped and counted, the wait for the rest is bounded, whole lines come out when it reads again', async (t) => {
  const pipe = fifo(t.testdir());
  t.teardown(pipe.close);
  const output = new LogOutput(65536, pipe.writer);
  // The pipe takes 64 KiB, the buffer 64 KiB more: 2,000 lines of ~230 bytes cannot all be held.
  for (let i = 0; i < 2000; i++) output.write(line(i));
  t.ok(output.droppedLines > 0, `${output.droppedLines} lines dropped`);
  t.ok(output.droppedLines < 2000 - 200, 'what fits in the pipe and the buffer is kept');
  t.equal(await output.settle(50), false, 'nothing is read: the wait gives up');
  let read = '';
  const ended = output.settle(10_000);
  for (let i = 0; i < 400 && !read.includes(`"i":${2000 - output.droppedLines - 1},`); i++) {
    read += pipe.readAll();
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(await ended, true, 'read again: everything buffered is written');
  read += pipe.readAll();
  const lines = read.split('\n').filter(Boolean);
  t.equal(lines.length, 2000 - output.droppedLines, 'every line not dropped arrives');
  t.ok(lines.every((text) => JSON.parse(text).msg.length === 200), 'as whole lines');
  t.same(lines.slice(0, 3).map((text) => JSON.parse(text).i), [0, 1, 2], 'in order, the first ones first');
});

t.test('the gateway with stdout not read serves every request, counts the lines it drops, and exits on SIGTERM', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, LOG_LEVEL: 'info', LORAUTER_LOG_BUFFER_BYTES: '65536', LORAUTER_SHUTDOWN_DRAIN_SECONDS: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => void child.kill('SIGKILL'));
  let output = '';
  const collect = (chunk: Buffer) => (output += chunk);
  child.stdout.on('data', collect);
  for (let i = 0; i < 400 && !/Server listening at http/.test(output); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  const url = output.match(/Server listening at (http:\/\/[\d.:]+)/)?.[1];
  t.ok(url, 'started');
  // From here on nobody reads the gateway's stdout: the pipe fills, then the log buffer.
  child.stdout.off('data', collect);
  child.stdout.pause();
  const dropped = async () => Number((await (await fetch(`${url}/metrics`)).text()).match(/^lorauter_log_lines_dropped_total (\d+)$/m)?.[1]);
  let answered = 0;
  let failed = 0;
  for (let batch = 0; batch < 200 && !((await dropped()) > 0); batch++) {
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${url}/v1/route`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: `prompt ${batch} ${i}` }), signal: AbortSignal.timeout(10_000) }).then((r) => r.status),
      ),
    );
    answered += statuses.filter((status) => status === 200).length;
    failed += statuses.filter((status) => status !== 200).length;
  }
  t.ok((await dropped()) > 0, `lines dropped after ${answered} requests, and counted`);
  t.equal(failed, 0, 'every request answered 200 meanwhile');
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([new Promise((resolve) => child.once('exit', resolve)), new Promise((resolve) => (timer = setTimeout(() => resolve('still running after 20 s'), 20_000)))]);
  clearTimeout(timer);
  t.equal(code, 0, 'exits after its bounded wait for the log, not held by the full pipe');
});
