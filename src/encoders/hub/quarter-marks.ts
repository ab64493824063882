/**
 * The quarters of each download reported so far: a download's progress is shown as it passes each
 * quarter (25, 50, 75 and 100%), on a terminal bar's behalf in logs and plain output alike.
 */
export class QuarterMarks {
  private readonly reached = new Map<string, number>();

  start(file: string): void {
    this.reached.set(file, 0);
  }

  /** The quarter `bytes` of `total` passes for the first time (1 to 4), else undefined. */
  passed(file: string, bytes: number, total: number): number | undefined {
    const quarter = Math.min(4, Math.floor((4 * bytes) / total));
    if (quarter <= (this.reached.get(file) ?? 0)) return undefined;
    this.reached.set(file, quarter);
    return quarter;
  }
}
