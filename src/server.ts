import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema.js';
import { createGateway, type Gateway } from './gateway.js';
import { buildApp } from './http/app.js';
import { createLogger } from './logger.js';

export interface RunningServer {
  app: FastifyInstance;
  gateway: Gateway;
  url: string;
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const gateway = await createGateway(config, logger);
  const app = await buildApp(gateway);
  const url = await app.listen({ port: config.port, host: config.host });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      gateway.accepting = false;
      await app.close();
      await gateway.close();
    })());
  return { app, gateway, url, stop };
}

/**
 * SIGTERM/SIGINT/SIGHUP: stop accepting, finish in-flight requests, close Redis, exit; a second
 * signal exits at once. SIGHUP (a closed terminal) stops the same way, and says so, rather than
 * ending the process silently as Node does by default.
 */
/** How long in-flight requests get to finish after a stop signal (the pod's terminationGracePeriodSeconds must be longer). */
export const SHUTDOWN_GRACE_MS = 10_000;

export function stopOnSignals(server: RunningServer, graceMs = SHUTDOWN_GRACE_MS): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(1);
    signalled = true;
    server.app.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      server.app.log.error('graceful shutdown timed out');
      process.exit(1);
    }, graceMs);
    timer.unref();
    server.stop().then(
      () => process.exit(0),
      (error) => {
        server.app.log.error({ err: error }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
}
