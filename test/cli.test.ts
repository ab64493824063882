import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FLAN_TASKS } from './helpers/gateway.js';

const run = promisify(execFile);
const entry = new URL('../src/cli/entry.ts', import.meta.url).pathname;
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', entry, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } });
const ONNX_MODEL = new URL('./fixtures/onnx/model', import.meta.url).pathname;

t.test('route prints the decision', async (t) => {
  const { stdout } = await cli('route', 'Translate to English: Wo ist der Bahnhof?', '--tasks', FLAN_TASKS);
  const decision = JSON.parse(stdout);
  t.equal(decision.tasks.length, 3);
  t.match(decision.tasks[0].id, /^(wmt|para_crawl)/);
  t.ok(Math.abs(decision.adapters.reduce((s: number, a: { weight: number }) => s + a.weight, 0) - 1) < 1e-9);
  t.ok(decision.confidence > 0 && decision.confidence <= 1, `confidence ${decision.confidence}`);
  t.equal(decision.abstained, false);
  const greeting = JSON.parse((await cli('route', 'hi, how are you?', '--tasks', FLAN_TASKS)).stdout);
  t.match(greeting, { adapters: [], abstained: true, abstain_reason: 'base_example' }, 'an abstention, and why');
  await t.rejects(cli('route', '  ', '--tasks', FLAN_TASKS), /The prompt is empty/, 'an empty prompt fails (exit 1), as HTTP answers 400');
});

t.test('eval reports top-1, top-3, domain and the OOD variant', async (t) => {
  const dir = t.testdir({});
  const subset = join(dir, 'subset.jsonl');
  const keep = new Set(['sst2', 'imdb_reviews', 'wmt16_translate_deen', 'wmt16_translate_ruen', 'e2e_nlg', 'dart', 'squad_v1', 'bool_q', 'anli_r1', 'snli']);
  writeFileSync(subset, readFileSync(FLAN_TASKS, 'utf8').split('\n').filter((line) => line && keep.has(JSON.parse(line).task)).join('\n'));
  const { stdout } = await cli('eval', '--tasks', subset, '--folds', '4', '--exclude-own', '--json');
  const [report] = JSON.parse(stdout);
  t.match(report, { folds: 4, tasks: 10, prompts: 200, encoder: /^ngram-tfidf:/ });
  t.ok(report.top1 > 0.8 && report.top1 <= 1, `top-1 ${report.top1}`);
  t.ok(report.top3 >= report.top1);
  t.ok(report.outOfDomain.domainTop1 >= 0 && report.outOfDomain.domainTop1 < report.domain, 'OOD is harder');
  t.equal(report.perTask.length, 10);
  const meanTop1 = report.perTask.reduce((sum: number, task: { top1: number }) => sum + task.top1, 0) / 10;
  t.ok(Math.abs(meanTop1 - report.top1) < 1e-9, 'per-task scores add up to the total (same prompts a task)');
  for (const pair of report.confused) {
    t.not(pair.task, pair.routedTo);
    const task = report.perTask.find((score: { task: string }) => score.task === pair.task);
    t.ok(pair.share <= 1 - task.top1 + 1e-9, 'a confusion is at most the task\'s misses');
  }
  t.ok(report.msPerPrompt > 0);
  t.match(report.abstention, { threshold: Number, inDomain: Number, outOfDomain: Number, offTopic: Number });
  for (const key of ['inDomain', 'outOfDomain', 'offTopic']) {
    const shares = report.sweep.map((point: Record<string, number>) => point[key]);
    t.same(shares, [...shares].sort((a, b) => a - b), `${key}: more prompts abstain as the threshold rises`);
  }
  t.ok(report.abstention.offTopic > report.abstention.inDomain, 'off-topic prompts abstain far more often than in-domain ones');
  const plot = join(dir, 'sweep.svg');
  await cli('eval', '--tasks', subset, '--folds', '2', '--sweep', '--plot', plot, '--json');
  t.match(readFileSync(plot, 'utf8'), /^<svg[^>]*>[\s\S]*<path d="M[\s\S]*<\/svg>$/);
  const text = await cli('eval', '--tasks', subset, '--folds', '2');
  t.match(text.stdout, /top-1.*top-3.*domain/);
  t.match(text.stdout, /most confused/);
});

t.test('eval compares encoders side by side', async (t) => {
  const dir = t.testdir({});
  const subset = join(dir, 'subset.jsonl');
  const keep = new Set(['sst2', 'wmt16_translate_deen', 'e2e_nlg', 'squad_v1']);
  writeFileSync(subset, readFileSync(FLAN_TASKS, 'utf8').split('\n').filter((line) => line && keep.has(JSON.parse(line).task)).join('\n'));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', entry, 'eval', '--tasks', subset, '--folds', '2', '--encoders', 'builtin,onnx,hybrid', '--json'], {
    env: { ...process.env, LOG_LEVEL: 'warn', LORAUTER_ENCODER_MODEL: ONNX_MODEL },
  });
  const reports = JSON.parse(stdout);
  t.same(reports.map((report: { encoder: string }) => report.encoder.split(':')[0]), ['ngram-tfidf', 'onnx', 'hybrid']);
  for (const report of reports) t.match(report, { tasks: 4, prompts: 80 });
  await t.rejects(cli('eval', '--tasks', subset, '--encoders', 'builtin,bert'), /unknown encoder kind bert/);
});

t.test('bad arguments and bad task files fail with a clear message', async (t) => {
  await t.rejects(cli('eval', '--tasks', FLAN_TASKS, '--folds', 'zero'), /must be a positive integer/);
  await t.rejects(cli('eval'), /required option/);
  const dir = t.testdir({ 'bad.jsonl': '{"task":"a","inputs":"x"}\nnot json\n' });
  await t.rejects(cli('route', 'hello', '--tasks', join(dir, 'bad.jsonl')), /bad\.jsonl:2: invalid JSON/);
});

t.test('--version; serve reloads the task file on SIGHUP (a bad one is rejected) and stops cleanly on SIGTERM', async (t) => {
  const { stdout } = await cli('--version');
  t.equal(stdout.trim(), JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
  const { spawn } = await import('node:child_process');
  const dir = t.testdir({ 'tasks.yaml': 'tasks:\n  - id: alpha\n    examples: [an alpha example]\n  - id: beta\n    examples: [a beta example]\n' });
  const tasks = join(dir, 'tasks.yaml');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, LOG_LEVEL: 'info', LORAUTER_SHUTDOWN_DRAIN_SECONDS: '0', LORAUTER_TASKS: tasks, LORAUTER_TASKS_CHECK_INTERVAL_MS: '0' },
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 200 && !pattern.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    t.match(output, pattern);
  };
  await waitFor(/Server listening/);
  child.kill('SIGHUP');
  await waitFor(/"reason":"SIGHUP".*"msg":"task file reloaded"/);
  writeFileSync(tasks, 'tasks: [oops');
  child.kill('SIGHUP');
  await waitFor(/"msg":"task file rejected: the running registry stays"/);
  t.equal(child.exitCode, null, 'still running');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.equal(code, 0, 'exit 0 after draining');
  t.match(output, /"signal":"SIGTERM".*"msg":"shutting down"/);
});

t.test('calibrate without any example targets fails at once, naming what is missing, and writes nothing', async (t) => {
  const { existsSync } = await import('node:fs');
  const dir = t.testdir({ 'tasks.jsonl': '{"task":"alpha","inputs":"an alpha example"}\n{"task":"beta","inputs":"a beta example"}\n' });
  const out = join(dir, 'calibrated.yaml');
  await t.rejects(
    run(process.execPath, ['--import', 'tsx', entry, 'calibrate', '--tasks', join(dir, 'tasks.jsonl'), '--out', out], { env: { ...process.env, LORAUTER_UPSTREAM_URL: 'http://127.0.0.1:9' } }),
    /No task in .* has example targets/,
  );
  t.notOk(existsSync(out), 'no registry written');
});
