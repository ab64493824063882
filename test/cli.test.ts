import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FLAN_TASKS } from './helpers/gateway.js';

const run = promisify(execFile);
const entry = new URL('../src/cli/entry.ts', import.meta.url).pathname;
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', entry, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } });

t.test('route prints the decision', async (t) => {
  const { stdout } = await cli('route', 'Translate to English: Wo ist der Bahnhof?', '--tasks', FLAN_TASKS);
  const decision = JSON.parse(stdout);
  t.equal(decision.tasks.length, 3);
  t.match(decision.tasks[0].id, /^(wmt|para_crawl)/);
  t.ok(Math.abs(decision.adapters.reduce((s: number, a: { weight: number }) => s + a.weight, 0) - 1) < 1e-9);
});

t.test('eval reports top-1, top-3, domain and the OOD variant', async (t) => {
  const dir = t.testdir({});
  const subset = join(dir, 'subset.jsonl');
  const keep = new Set(['sst2', 'imdb_reviews', 'wmt16_translate_deen', 'wmt16_translate_ruen', 'e2e_nlg', 'dart', 'squad_v1', 'bool_q', 'anli_r1', 'snli']);
  writeFileSync(subset, readFileSync(FLAN_TASKS, 'utf8').split('\n').filter((line) => line && keep.has(JSON.parse(line).task)).join('\n'));
  const { stdout } = await cli('eval', '--tasks', subset, '--folds', '4', '--exclude-own', '--json');
  const report = JSON.parse(stdout);
  t.match(report, { folds: 4, tasks: 10, prompts: 200 });
  t.ok(report.top1 > 0.8 && report.top1 <= 1, `top-1 ${report.top1}`);
  t.ok(report.top3 >= report.top1);
  t.ok(report.outOfDomain.domainTop1 >= 0 && report.outOfDomain.domainTop1 < report.domain, 'OOD is harder');
  const text = await cli('eval', '--tasks', subset, '--folds', '2');
  t.match(text.stdout, /top-1 0\.\d{3}\s+top-3 [01]\.\d{3}\s+domain [01]\.\d{3}/);
});

t.test('bad arguments and bad task files fail with a clear message', async (t) => {
  await t.rejects(cli('eval', '--tasks', FLAN_TASKS, '--folds', 'zero'), /must be a positive integer/);
  await t.rejects(cli('eval'), /required option/);
  const dir = t.testdir({ 'bad.jsonl': '{"task":"a","inputs":"x"}\nnot json\n' });
  await t.rejects(cli('route', 'hello', '--tasks', join(dir, 'bad.jsonl')), /bad\.jsonl:2: invalid JSON/);
});
