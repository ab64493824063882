import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../config/load.js';
import type { EncoderKind } from '../config/schema.js';
import { ENCODER_KINDS, prepareEncoder } from '../encoders/kinds.js';
import { createGateway } from '../gateway.js';
import { createLogger } from '../logger.js';
import { withDefaultBaseExamples } from '../registry/base-examples.js';
import { loadRegistry } from '../registry/load.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateRouting } from '../router/evaluation.js';
import { addCalibrateCommand } from './calibrate-command.js';
import { addModelsCommand } from './models-command.js';
import { hubProgress } from './hub-progress.js';
import { sweepPlot } from './sweep-plot.js';
import { startServer, stopOnSignals } from '../server.js';

const positiveInt = (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError('must be a positive integer');
  return parsed;
};
const positiveNumber = (value: string) => {
  const parsed = Number(value);
  if (!(parsed > 0)) throw new InvalidArgumentError('must be a number > 0');
  return parsed;
};

function configFrom(options: { tasks?: string; config?: string; topK?: number; temperature?: number }, overrides: Record<string, unknown> = {}) {
  return loadConfig({ file: options.config, overrides: { tasks: options.tasks, topK: options.topK, temperature: options.temperature, ...overrides } });
}

/** The version in package.json, found upwards from this file (src/cli when run with tsx, dist/src/cli when built). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 5; depth++, dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'lorauter-gateway' && manifest.version) return manifest.version;
    }
  }
  return 'unknown';
}

export function buildCli(): Command {
  const program = new Command('lorauter')
    .description('LoRAuter gateway: route prompts to LoRA adapters through tasks')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError();
  const common = (command: Command) =>
    command
      .option('-t, --tasks <file>', 'task file (.jsonl examples or .yaml/.json registry); env LORAUTER_TASKS')
      .option('-c, --config <file>', 'config file (YAML or JSON); env LORAUTER_CONFIG')
      .option('-k, --top-k <n>', 'tasks to mix (K)', positiveInt)
      .option('--temperature <t>', 'softmax temperature (τ)', positiveNumber);

  common(program.command('serve').description('start the HTTP gateway'))
    .option('-p, --port <port>', 'port to listen on; env PORT', (v) => Number(v))
    .option('--host <host>', 'address to bind; env HOST')
    .action(async (options) => {
      const server = await startServer(configFrom(options, { port: options.port, host: options.host }));
      stopOnSignals(server);
    });

  common(program.command('route').description('print the routing decision for a prompt').argument('<prompt>', 'the prompt text'))
    .option('--exclude <tasks>', 'comma-separated tasks to route without (out-of-domain protocol)')
    .action(async (prompt: string, options) => {
      const config = configFrom(options, { logLevel: 'warn', cache: { redisUrl: undefined } });
      // One prompt: not worth starting an encoder thread, unless asked for.
      config.encoder.workers ??= 0;
      // As POST /v1/route would answer 400: an empty prompt is a mistake, not a decision.
      if (prompt.trim() === '') throw new Error('The prompt is empty: give the text to route.');
      const gateway = await createGateway(config, createLogger('warn'));
      try {
        const decision = await gateway.router.route(prompt, { excludeTasks: options.exclude?.split(',').filter(Boolean) });
        const { tasks, adapters, confidence, abstained, abstainReason } = decision;
        console.log(JSON.stringify({ tasks, adapters, confidence, abstained, ...(abstainReason ? { abstain_reason: abstainReason } : {}), encoder: gateway.encoder.fingerprint }, null, 2));
      } finally {
        await gateway.close();
      }
    });

  program
    .command('eval')
    .description('k-fold routing accuracy: fit on part of each task\'s examples, route the rest; encoders side by side')
    .requiredOption('-t, --tasks <file>', 'task file with examples (.jsonl or .yaml/.json)')
    .option('-c, --config <file>', 'config file (YAML or JSON) with the encoder settings; env LORAUTER_CONFIG and LORAUTER_ENCODER_* too')
    .option('-e, --encoders <kinds>', `encoder kinds to compare, comma-separated (${Object.keys(ENCODER_KINDS).join(', ')}); default: the configured one`)
    .addOption(new Option('-f, --folds <n>', 'number of folds (5: 16 validation / 4 test prompts a task on FLAN)').argParser(positiveInt).default(5))
    .option('--exclude-own', 'also report the out-of-domain variant: each prompt routed without its own task and adapter')
    .option('--temperature <t>', 'softmax temperature (τ)', positiveNumber, 0.2)
    .option('--max-dimensions <n>', 'built-in encoder: exact projection up to this many tasks', positiveInt)
    .option('--per-task', 'print top-1 and top-3 per task')
    .option('--min-confidence <c>', 'abstention threshold to report on (default: the configured one)', (v) => Number(v))
    .option('--sweep', 'print the abstention trade-off over a range of thresholds')
    .option('--plot <file.svg>', 'with --sweep: write the trade-off curve as an SVG plot')
    .option('--json', 'print the reports as JSON')
    .action(async (options) => {
      const config = loadConfig({ file: options.config, overrides: { logLevel: 'warn' } });
      const registry = withDefaultBaseExamples(loadRegistry(options.tasks), config.defaultBaseExamples);
      const kinds: EncoderKind[] = options.encoders ? options.encoders.split(',').map((kind: string) => kind.trim()) : [config.encoder.kind];
      const unknown = kinds.filter((kind) => !(kind in ENCODER_KINDS));
      if (unknown.length > 0) throw new InvalidArgumentError(`unknown encoder kind ${unknown.join(', ')}; known: ${Object.keys(ENCODER_KINDS).join(', ')}`);
      const reports = [];
      for (const kind of kinds) {
        // A model named by hub id may be downloaded first: its progress on stderr.
        const progress = hubProgress();
        const prepared = await prepareEncoder({ ...config.encoder, kind, ...(options.maxDimensions ? { maxDimensions: options.maxDimensions } : {}) }, { hub: progress }).finally(() => progress.stop());
        try {
          reports.push(
            await evaluateRouting(registry, {
              folds: options.folds,
              excludeOwn: Boolean(options.excludeOwn),
              topK: 3,
              temperature: options.temperature,
              encoder: prepared,
              minConfidence: options.minConfidence ?? config.minConfidence,
              baseMargin: config.baseMargin,
              maxRoutedChars: config.maxRoutedChars,
              onFold: options.json ? undefined : (fold, folds) => process.stderr.write(`${kind}: fold ${fold + 1}/${folds}\r`),
            }),
          );
        } finally {
          await prepared.close();
        }
      }
      if (options.json) {
        if (options.plot) writeFileSync(options.plot, sweepPlot(reports));
        console.log(JSON.stringify(reports, null, 2));
        return;
      }
      const pct = (x: number | undefined) => (x === undefined ? '' : x.toFixed(3));
      console.log(`tasks ${reports[0].tasks}, prompts ${reports[0].prompts}, folds ${reports[0].folds}`);
      console.table(
        reports.map((report) => ({
          encoder: report.encoder,
          'top-1': pct(report.top1),
          'top-3': pct(report.top3),
          domain: pct(report.domain),
          'OOD domain top-1': pct(report.outOfDomain?.domainTop1),
          'OOD domain top-3': pct(report.outOfDomain?.domainTop3),
          'ms/prompt': report.msPerPrompt.toFixed(3),
        })),
      );
      console.log(`abstention at confidence < ${reports[0].abstention.threshold} (share of prompts sent to the base model):`);
      console.table(
        reports.map((report) => ({
          encoder: report.encoder,
          'in-domain (false abstention)': pct(report.abstention.inDomain),
          'OOD (own task excluded)': pct(report.abstention.outOfDomain),
          'off-topic': pct(report.abstention.offTopic),
        })),
      );
      if (options.sweep) {
        for (const report of reports) {
          console.log(`\n${report.encoder}: threshold sweep`);
          console.table(report.sweep.map((point) => ({ threshold: point.threshold, 'in-domain': pct(point.inDomain), OOD: pct(point.outOfDomain), 'off-topic': pct(point.offTopic) })));
        }
        if (options.plot) {
          writeFileSync(options.plot, sweepPlot(reports));
          console.log(`plot written to ${options.plot}`);
        }
      }
      for (const report of reports) {
        console.log(`\n${report.encoder}: most confused (task → routed to, share of its prompts)`);
        for (const pair of report.confused) console.log(`  ${pair.task} → ${pair.routedTo}  ${pct(pair.share)}`);
        if (options.perTask) console.table(report.perTask.map((score) => ({ task: score.task, domain: score.domain, 'top-1': pct(score.top1), 'top-3': pct(score.top3) })));
      }
    });
  addCalibrateCommand(program, positiveInt);
  addModelsCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
