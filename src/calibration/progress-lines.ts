/**
 * Progress as log lines, for runs without a terminal (a Kubernetes Job's pod): every `everyMs`, the calls made of
 * the most planned, the tasks done and an ETA at the rate so far (an upper bound: confidence bounds stop early).
 */
export class ProgressLines {
  private planned = 0;
  private calls = 0;
  private tasksDone = 0;
  private tasks = 0;
  private started = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly label: string,
    private readonly everyMs: number,
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  start(planned: number, tasks: number): void {
    this.planned = planned;
    this.tasks = tasks;
    this.started = performance.now();
    this.timer = setInterval(() => this.write(this.line()), this.everyMs);
    this.timer.unref();
  }

  call(): void {
    this.calls++;
  }

  taskDone(): void {
    this.tasksDone++;
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.timer) this.write(this.line());
    this.timer = undefined;
  }

  line(): string {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = this.calls / Math.max(seconds, 1e-9);
    const left = Math.max(0, this.planned - this.calls);
    const eta = this.calls === 0 ? 'unknown' : `at most ${formatSeconds(left / rate)}`;
    const share = this.planned ? ((100 * this.calls) / this.planned).toFixed(1) : '100.0';
    return `${this.label}: ${this.calls} of at most ${this.planned} calls (${share}%), ${this.tasksDone}/${this.tasks} tasks done, ${rate.toFixed(1)} calls/s, ETA ${eta}`;
  }
}

export function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
