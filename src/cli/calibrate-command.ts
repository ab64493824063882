import { Option, type Command } from 'commander';
import cliProgress from 'cli-progress';
import { writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { Redis } from 'ioredis';
import { askAdapter } from '../calibration/adapter-probe.js';
import { calibrate, withCalibratedScores, type CalibrationReport, type CalibrationStrategy } from '../calibration/calibrate.js';
import { bestAdaptersTable, matrixCsv, matrixHeatmap } from '../calibration/report.js';
import { RedisAnswers } from '../calibration/redis-answers.js';
import { formatSeconds, ProgressLines } from '../calibration/progress-lines.js';
import { ReplicaPool } from '../calibration/replicas.js';
import { calibrationStatus } from '../calibration/status.js';
import { ResultsFile, type AnswerTable } from '../calibration/results-file.js';
import { parseShard, shardOf, shardResultsFiles, shardResultsPath } from '../calibration/shards.js';
import { nearestTaskAdapters } from '../calibration/shortlist.js';
import { prepareEncoder } from '../encoders/kinds.js';
import { hubProgress } from './hub-progress.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../logger.js';
import { GatewayMetrics } from '../observability/metrics.js';
import { serializeRegistryDocument, taskToDocument } from '../registry/document.js';
import { loadRegistry } from '../registry/load.js';
import type { TaskRegistry } from '../registry/types.js';
import { createUpstream } from '../upstreams/index.js';

interface CalibrateOptions {
  tasks: string;
  config?: string;
  adapters?: string;
  shortlist?: number;
  strategy: CalibrationStrategy;
  budget?: number;
  concurrency: number;
  examples?: number;
  maxTokens: number;
  out: string;
  matrix?: string;
  results?: string;
  apply?: string;
  progress: boolean;
  progressEvery: number;
  upstream?: string;
  shard?: string;
  merge?: boolean;
  status?: boolean;
}

export function addCalibrateCommand(program: Command, positiveInt: (value: string) => number): void {
  program
    .command('calibrate')
    .description("fill the task × adapter performance matrix through the upstream (confidence bounds, halving or full) and write the registry with each task's best adapters; --shard and --merge spread it over a fleet")
    .requiredOption('-t, --tasks <file>', 'registry or task file; tasks need examples with targets')
    .requiredOption('-o, --out <registry.yaml>', 'where to write the registry with the scores (.yaml or .json)')
    .option('-c, --config <file>', 'config file; the upstream comes from it or LORAUTER_UPSTREAM / LORAUTER_UPSTREAM_URL')
    .option('-a, --adapters <ids>', 'candidate adapters, comma-separated (default: every adapter of the registry)')
    .option('-k, --shortlist <k>', "each task's candidates: the adapters of its k nearest tasks (itself included), by the configured encoder", positiveInt)
    .addOption(new Option('-s, --strategy <strategy>', 'bounds: confidence bounds (LUCB), stops once the best is clear; halving: successive halving; full: every adapter on every example').choices(['bounds', 'halving', 'full']).default('bounds'))
    .option('-b, --budget <calls>', 'bounds, halving: upstream calls a task may take at most (default: half of the full row)', positiveInt)
    .option('-j, --concurrency <n>', 'upstream calls at once', positiveInt, 4)
    .option('-e, --examples <n>', 'examples a task is scored on at most', positiveInt)
    .option('--max-tokens <n>', 'max_tokens of each answer', positiveInt, 128)
    .option('-m, --matrix <matrix.csv>', 'also write the whole matrix as CSV, and as a heat map beside it (.svg)')
    .option('-r, --results <file.jsonl>', 'scored answers, saved as they arrive; a rerun skips them (default: <out>.results.jsonl)')
    .option('--apply <url>', "push the scores into a running gateway's admin API (key: LORAUTER_ADMIN_API_KEY)")
    .option('-u, --upstream <urls>', 'replicas of the same server, comma-separated (default: LORAUTER_UPSTREAM_URL); --concurrency calls each; a failed call is tried on the others')
    .option('--shard <i/N>', "calibrate shard i of N (every N-th task from the i-th; i from 0, as JOB_COMPLETION_INDEX); its answers go to <out>.shard-i-of-N.results.jsonl; then --merge")
    .option('--merge', "no upstream calls: combine every shard's results for --out into the registry (and --matrix, --apply)")
    .option('--status', "no upstream calls: how far the shards got (tasks done, answers, share of the full matrix, rate, ETA), while they run")
    .option('--no-progress', 'no progress bar or progress lines')
    .option('--progress-every <seconds>', 'without a terminal (a Job\'s pod): a progress line this often', positiveInt, 30)
    .action(async (options: CalibrateOptions) => {
      const config = loadConfig({ file: options.config, overrides: { logLevel: 'warn' } });
      if ((options.merge || options.status) && options.shard) throw new Error('--merge and --status take every shard; give them without --shard');
      // --merge and --status make no upstream call: they read what the shards saved.
      const readsShards = Boolean(options.merge || options.status);
      const urls = listed(options.upstream) ?? (config.upstream.url ? [config.upstream.url] : []);
      if (!readsShards && urls.length === 0) throw new Error('calibrate needs an upstream: set LORAUTER_UPSTREAM_URL (and LORAUTER_UPSTREAM for its kind) or --upstream');
      const shard = options.shard ? parseShard(options.shard) : undefined;
      const registry = loadRegistry(options.tasks);
      if (!registry.tasks.some((task) => task.targets?.some((target) => target !== null && target !== undefined))) {
        throw new Error(`No task in ${options.tasks} has example targets, and calibration scores each adapter's answers against them: give the tasks "targets" (one per example, null where unknown; FLAN JSONL lines carry them in "targets"). Nothing was written.`);
      }
      const adapters = listed(options.adapters);
      const shortlist = options.shortlist ? await shortlistFor(registry, config, options.shortlist) : undefined;
      // With Redis (REDIS_URL) every shard's answers go to one hash, named after --out; else to files beside it.
      const redis = config.cache.redisUrl && !options.results ? new Redis(config.cache.redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5000, lazyConnect: true }) : undefined;
      if (redis) await redis.connect();
      const resultsPath = options.results ?? (shard ? shardResultsPath(options.out, shard) : `${options.out}.results.jsonl`);
      const shardFiles = readsShards && !redis ? shardResultsFiles(options.out) : [];
      const results = redis ? await RedisAnswers.open(redis, `${config.registry.keyPrefix.replace(/registry:$/, '')}calibration:${basename(options.out)}:answers`) : new ResultsFile(resultsPath, shardFiles);
      const where = results instanceof RedisAnswers ? `Redis (${results.key})` : resultsPath;
      if (options.status) {
        try {
          return await printStatus(options, registry, { adapters, shortlist, strategy: options.strategy, budget: options.budget, maxExamples: options.examples }, results, redis ? where : `${shardFiles.length} shard results files`);
        } finally {
          redis?.disconnect();
        }
      }
      const upstreams = options.merge ? [] : urls.map((url) => createUpstream({ ...config, upstream: { ...config.upstream, url } }, registry.adapters, new GatewayMetrics(), createLogger('warn'))!);
      const pool = options.merge ? undefined : new ReplicaPool(upstreams.map((upstream) => (adapter: string, prompt: string) => askAdapter(upstream, adapter, prompt, { maxTokens: options.maxTokens, apiKey: config.upstream.apiKey, timeoutMs: config.upstream.headersTimeoutMs + config.upstream.bodyTimeoutMs })));
      // A merge makes no call: every answer must be in a shard's results.
      const missing = async (adapter: string) => {
        throw Object.assign(new Error(`no saved answer of adapter "${adapter}" for an example: a shard has not finished (rerun it, then --merge)`), { retriable: false });
      };
      const bar = new cliProgress.SingleBar({ format: 'calibrating {bar} {percentage}% | {value}/{total} calls | ETA {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic);
      const lines = options.progress && !process.stderr.isTTY ? new ProgressLines(shard ? `shard ${shard.index}/${shard.count}` : 'calibration', options.progressEvery * 1000) : undefined;
      let report: CalibrationReport;
      try {
        report = await calibrate(shard ? shardOf(registry, shard) : registry, {
          adapters,
          shortlist,
          strategy: options.strategy,
          budget: options.budget,
          maxExamples: options.examples,
          concurrency: options.concurrency * Math.max(1, upstreams.length),
          results,
          ask: pool ? pool.ask : missing,
          onPlanned: (calls, tasks) => {
            if (!options.progress) return;
            if (lines) lines.start(calls, tasks);
            else bar.start(calls, 0);
          },
          onCall: (reused) => {
            if (!options.progress) return;
            if (!reused) lines?.call();
            if (!lines) bar.increment();
          },
          onTaskDone: () => lines?.taskDone(),
        });
      } finally {
        bar.stop();
        lines?.stop();
        await Promise.all(upstreams.map((upstream) => upstream.close()));
        redis?.disconnect();
      }
      if (pool && upstreams.length > 1) console.log(`answers by replica: ${urls.map((url, i) => `${url} ${pool.answered[i]}`).join(', ')}`);
      if (shard) {
        console.log(`shard ${shard.index}/${shard.count}: ${report.tasks.length} tasks calibrated, ${report.calls} upstream calls${report.resumed ? ` + ${report.resumed} from an earlier run` : ''} (${shareOfMatrix(report)}% of its full matrix); answers in ${where}. When every shard is done: --merge`);
        return;
      }
      if (options.merge) console.log(redis ? `merged the answers in ${where}` : `merged the answers of ${shardFiles.length} shard results files`);
      const calibrated = withCalibratedScores(registry, report);
      writeFileSync(options.out, serializeRegistryDocument(calibrated, extname(options.out).toLowerCase() === '.json' ? 'json' : 'yaml'));
      if (options.matrix) {
        writeFileSync(options.matrix, matrixCsv(report));
        writeFileSync(options.matrix.replace(/(\.csv)?$/i, '.svg'), matrixHeatmap(report));
      }
      console.log(
        `calibrated ${report.tasks.length} tasks × ${report.adapters.length} adapters (${options.strategy}${shortlist ? `, shortlist of the ${options.shortlist} nearest tasks' adapters` : ''}): ${report.calls} upstream calls` +
          `${report.resumed ? ` + ${report.resumed} from an earlier run` : ''}, ${shareOfMatrix(report)}% of the ${report.fullMatrixCalls} the full matrix takes`,
      );
      for (const skipped of report.skipped) console.log(`skipped ${skipped.task}: ${skipped.reason}`);
      console.table(bestAdaptersTable(report));
      console.log(`registry written to ${options.out}${options.matrix ? `; matrix to ${options.matrix} and its heat map beside it` : ''}`);
      if (options.apply) await applyToGateway(options.apply, calibrated, report);
    });
}

/** The adapters of each task's k nearest tasks, by the configured encoder (fitted on the registry when it is the built-in one). */
async function shortlistFor(registry: TaskRegistry, config: Config, k: number): Promise<Map<string, string[]>> {
  const progress = hubProgress();
  const prepared = await prepareEncoder(config.encoder, { hub: progress }).finally(() => progress.stop());
  try {
    return await nearestTaskAdapters(registry, prepared.forTasks(registry.tasks), k);
  } finally {
    await prepared.close();
  }
}

/**
 * Sets each calibrated task's adapter scores in a running gateway (and every replica sharing its
 * registry): read the task, replace its scores, write it back with If-Match, so that a change made
 * there meanwhile is never overwritten (on 412 it is read again). A task the gateway does not have
 * is added as calibrated.
 */
async function applyToGateway(url: string, registry: TaskRegistry, report: CalibrationReport): Promise<void> {
  const key = process.env.LORAUTER_ADMIN_API_KEY;
  if (!key) throw new Error('--apply needs LORAUTER_ADMIN_API_KEY, the admin key of the gateway');
  const calibrated = new Set(report.tasks.map((result) => result.task));
  const call = (method: 'GET' | 'PUT', id: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(new URL(`/v1/tasks/${encodeURIComponent(id)}`, url), {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  for (const task of registry.tasks.filter((candidate) => calibrated.has(candidate.id))) {
    const { id, ...document } = taskToDocument(task);
    for (let attempt = 0; ; attempt++) {
      const current = await call('GET', id);
      let response: Response;
      if (current.status === 404) {
        response = await call('PUT', id, {}, document);
      } else if (current.ok) {
        const { object: _object, id: _id, version: _version, ...running } = (await current.json()) as Record<string, unknown>;
        response = await call('PUT', id, { 'if-match': current.headers.get('etag') ?? '*' }, { ...running, adapters: document.adapters });
      } else {
        throw new Error(`--apply: GET /v1/tasks/${id} answered ${current.status}: ${(await current.text()).slice(0, 300)}`);
      }
      if (response.status === 412 && attempt < 3) continue;
      if (!response.ok) throw new Error(`--apply: PUT /v1/tasks/${id} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
      break;
    }
  }
  console.log(`applied ${calibrated.size} tasks to ${url}`);
}

/** `--status`: how far the shards of a calibration got, from the answers they saved (`source`: where those are). */
async function printStatus(options: CalibrateOptions, registry: TaskRegistry, plan: Parameters<typeof calibrationStatus>[1], results: AnswerTable, source: string): Promise<void> {
  const status = await calibrationStatus(registry, plan, results);
  const share = status.fullMatrixCalls ? ((100 * status.answers) / status.fullMatrixCalls).toFixed(1) : '0';
  const eta = status.pending.length === 0 ? 'done' : status.rate ? `ETA at most ${formatSeconds(status.callsLeft / status.rate)} at ${status.rate.toFixed(1)} calls/s` : 'ETA unknown (no timed answers yet)';
  console.log(`${options.out}: ${status.done.length}/${status.done.length + status.pending.length} tasks done, ${status.answers} answers from ${source} (${share}% of the full matrix's ${status.fullMatrixCalls}); at most ${status.callsLeft} calls left; ${eta}`);
  if (status.pending.length > 0) console.log(`pending: ${status.pending.slice(0, 10).join(', ')}${status.pending.length > 10 ? `, … (${status.pending.length})` : ''}`);
}

/** Calls made in this run and reused from earlier ones, as a share (%) of what the full matrix takes. */
function shareOfMatrix(report: CalibrationReport): string {
  return report.fullMatrixCalls ? ((100 * (report.calls + report.resumed)) / report.fullMatrixCalls).toFixed(1) : '0';
}

/** A comma-separated option as its items; undefined when it was not given. */
function listed(text: string | undefined): string[] | undefined {
  return text?.split(',').map((item) => item.trim()).filter(Boolean);
}
