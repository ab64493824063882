import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import { createGateway, type Gateway } from './gateway.js';
import { buildApp } from './http/app.js';
import { ShutdownAbort } from './upstreams/exchange-abort.js';
import { createLogger, stdoutLog, type LogOutput } from './logger.js';
import { startTracing, tracingRequested } from './observability/tracing.js';

export interface RunningServer {
  app: FastifyInstance;
  gateway: Gateway;
  url: string;
  log: LogOutput;
  stop(): Promise<void>;
}

/** How long an exit waits for the last log lines to be written (stdout may not be read at all). */
const LOG_SETTLE_MS = 2000;

export async function startServer(config: Config): Promise<RunningServer> {
  const logOutput = stdoutLog(config.logBufferBytes);
  const logger = createLogger(config.logLevel, logOutput);
  // Before anything that makes spans; the OTEL_* variables decide.
  const tracing = tracingRequested(process.env) ? startTracing() : undefined;
  if (tracing) logger.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'default' }, 'OpenTelemetry tracing on');
  const gateway = await createGateway(config, logger);
  gateway.metrics.countDroppedLogLines(logOutput);
  const app = await buildApp(gateway);
  const url = await app.listen({ port: config.port, host: config.host });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Drain: /readyz says 503 so that the load balancer stops sending, while requests are still served.
      gateway.accepting = false;
      await sleep(config.shutdownDrainSeconds * 1000);
      // Grace: no new connections; in-flight requests get this long, then open streams end with an error event.
      const deadline = setTimeout(() => {
        for (const controller of gateway.inflight) controller.abort(new ShutdownAbort());
      }, config.shutdownGraceSeconds * 1000);
      // Fastify closes the connections idle when it starts closing; one that finishes its request
      // later would otherwise stay open until its keep-alive timeout.
      const idle = setInterval(() => app.server.closeIdleConnections(), 100);
      await app.close();
      clearInterval(idle);
      clearTimeout(deadline);
      await gateway.close();
      await tracing?.shutdown();
    })());
  return { app, gateway, url, log: logOutput, stop };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The longest a stop takes: drain, grace, and a margin to close connections and write the last log lines (the pod's terminationGracePeriodSeconds must be longer). */
export function shutdownBudgetMs(config: Pick<Config, 'shutdownDrainSeconds' | 'shutdownGraceSeconds'>): number {
  return (config.shutdownDrainSeconds + config.shutdownGraceSeconds) * 1000 + 5000 + LOG_SETTLE_MS;
}

/**
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, close Redis, write the last log lines
 * (bounded), exit, all within `graceMs`; a second signal exits at once. SIGHUP reloads the task file (an invalid one is rejected and the registry stays).
 */
export function stopOnSignals(server: RunningServer, graceMs = shutdownBudgetMs(server.gateway.config)): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(1);
    signalled = true;
    server.app.log.info({ signal }, 'shutting down');
    const exit = (code: number) => void server.log.settle(LOG_SETTLE_MS).then(() => process.exit(code));
    const timer = setTimeout(() => {
      server.app.log.error('graceful shutdown timed out');
      exit(1);
    }, Math.max(0, graceMs - LOG_SETTLE_MS));
    timer.unref();
    server.stop().then(
      () => exit(0),
      (error) => {
        server.app.log.error({ err: error }, 'error during shutdown');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    server.gateway.liveRegistry.reload('SIGHUP', true).then(
      (result) => {
        if (result === 'no_file') server.app.log.warn('SIGHUP: no task file to reload (LORAUTER_TASKS is not set)');
      },
      (error) => server.app.log.error({ err: error }, 'SIGHUP: reload failed'),
    );
  });
}
