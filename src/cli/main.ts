import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../config/load.js';
import { NgramEncoder } from '../encoders/ngram-encoder.js';
import { createGateway } from '../gateway.js';
import { createLogger } from '../logger.js';
import { loadRegistry } from '../registry/load.js';
import { evaluateRouting } from '../router/evaluation.js';
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

export function buildCli(): Command {
  const program = new Command('lorauter').description('LoRAuter gateway: route prompts to LoRA adapters through tasks').showHelpAfterError();
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
      const gateway = await createGateway(config, createLogger('warn'));
      const decision = await gateway.router.route(prompt, { excludeTasks: options.exclude?.split(',').filter(Boolean) });
      console.log(JSON.stringify({ tasks: decision.tasks, adapters: decision.adapters, encoder: gateway.encoder.fingerprint }, null, 2));
      await gateway.close();
    });

  program
    .command('eval')
    .description('k-fold routing accuracy: fit on part of each task\'s examples, route the rest')
    .requiredOption('-t, --tasks <file>', 'task file with examples (.jsonl or .yaml/.json)')
    .addOption(new Option('-f, --folds <n>', 'number of folds (5: 16 validation / 4 test prompts a task on FLAN)').argParser(positiveInt).default(5))
    .option('--exclude-own', 'also report the out-of-domain variant: each prompt routed without its own task and adapter')
    .option('--temperature <t>', 'softmax temperature (τ)', positiveNumber, 0.2)
    .option('--max-dimensions <n>', 'encoder: exact projection up to this many tasks', positiveInt, 1024)
    .option('--json', 'print the report as JSON')
    .action(async (options) => {
      const registry = loadRegistry(options.tasks);
      const report = await evaluateRouting(registry, {
        folds: options.folds,
        excludeOwn: Boolean(options.excludeOwn),
        topK: 3,
        temperature: options.temperature,
        fitEncoder: (tasks) => NgramEncoder.fit(tasks, { maxDimensions: options.maxDimensions }),
        onFold: options.json ? undefined : (fold, folds) => process.stderr.write(`fold ${fold + 1}/${folds}\r`),
      });
      if (options.json) {
        console.log(JSON.stringify(report, null, 2));
        return;
      }
      const pct = (x: number) => x.toFixed(3);
      console.log(`tasks ${report.tasks}, prompts ${report.prompts}, folds ${report.folds}`);
      console.log(`top-1 ${pct(report.top1)}  top-3 ${pct(report.top3)}  domain ${pct(report.domain)}`);
      if (report.outOfDomain) {
        console.log(`out-of-domain (own task and adapter excluded): domain top-1 ${pct(report.outOfDomain.domainTop1)}  domain in top-3 ${pct(report.outOfDomain.domainTop3)}`);
      }
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildCli().parseAsync(argv);
}
