import pino, { type Logger } from 'pino';
import sonicBoom, { type SonicBoom } from 'sonic-boom';

/** A reader that has taken nothing for this long is stalled: the exit does not try to write to it. */
const STALLED_AFTER_MS = 1000;
/** The log lines held while stdout is not read, unless configured otherwise. */
export const DEFAULT_LOG_BUFFER_BYTES = 8 * 2 ** 20;

const open = new Set<LogOutput>();
let exitHooked = false;

/**
 * Where log lines go: stdout, written asynchronously out of a buffer of at most `maxBufferBytes`.
 * A log collector that stops reading must not hold requests (nothing is written synchronously), grow
 * memory without bound (lines beyond the buffer are dropped and counted), or hold the exit (pino's
 * own exit flush retries a full pipe forever; here the last lines are written only while stdout
 * takes them).
 */
export class LogOutput {
  droppedLines = 0;
  private readonly stream: SonicBoom;
  private busy = false;
  private broken = false;
  private exiting = false;
  private lastProgress = Date.now();

  constructor(maxBufferBytes = DEFAULT_LOG_BUFFER_BYTES, fd: number = process.stdout.fd) {
    // A full non-blocking pipe answers EAGAIN: retried every 100 ms while running, given up at exit.
    this.stream = new sonicBoom.SonicBoom({ fd, sync: false, maxLength: maxBufferBytes, retryEAGAIN: () => !this.exiting });
    this.stream.on('drop', () => this.droppedLines++);
    this.stream.on('write', () => (this.lastProgress = Date.now()));
    this.stream.on('drain', () => (this.busy = false));
    // EPIPE (the reader is gone) or any other write failure: the gateway goes on without its log.
    this.stream.on('error', () => {
      this.broken = true;
      this.busy = false;
    });
    open.add(this);
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const output of open) output.flushAtExit();
      });
    }
  }

  /** pino's destination. */
  write(line: string): void {
    if (this.broken) {
      this.droppedLines++;
      return;
    }
    this.busy = true;
    this.stream.write(line);
  }

  /** Waits until what is buffered is written, at most `timeoutMs`; false when lines were still waiting. */
  settle(timeoutMs: number): Promise<boolean> {
    if (!this.busy) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (written: boolean) => {
        clearTimeout(timer);
        this.stream.off('drain', onDrain);
        resolve(written);
      };
      const onDrain = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.stream.on('drain', onDrain);
    });
  }

  private flushAtExit(): void {
    if (!this.busy || this.broken || Date.now() - this.lastProgress > STALLED_AFTER_MS) return;
    this.exiting = true;
    try {
      this.stream.flushSync();
    } catch {
      // The pipe filled again: what is left is lost rather than the exit held.
    }
  }
}

let stdout: LogOutput | undefined;

/** The process's stdout, made once: the buffer size of its first caller holds. */
export function stdoutLog(maxBufferBytes = DEFAULT_LOG_BUFFER_BYTES): LogOutput {
  return (stdout ??= new LogOutput(maxBufferBytes));
}

export function createLogger(level: string, output: LogOutput = stdoutLog()): Logger {
  return pino({ level, base: { service: 'lorauter-gateway' } }, output);
}
