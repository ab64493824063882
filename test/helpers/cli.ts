import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const entry = new URL('../../src/cli/entry.ts', import.meta.url).pathname;

/** `lorauter …` as a process, with `env` added. */
export const cli = (env: Record<string, string>, ...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', entry, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, maxBuffer: 1 << 24 });
