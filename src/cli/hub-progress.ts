import cliProgress from 'cli-progress';
import { QuarterMarks } from '../encoders/hub/quarter-marks.js';
import type { HubEvents } from '../encoders/hub/resolve-model.js';

export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** A bar a file on a terminal; elsewhere (a Docker build, an init container's log) a line a file and each quarter. */
export function hubProgress(): HubEvents & { stop(): void } {
  if (!process.stderr.isTTY) {
    const quarters = new QuarterMarks();
    return {
      downloading: (file, resumedFrom) => {
        quarters.start(file.path);
        process.stderr.write(`${resumedFrom > 0 ? 'resuming' : 'downloading'} ${file.path} (${mb(file.size)})${resumedFrom > 0 ? ` from ${mb(resumedFrom)}` : ''}\n`);
      },
      progress: ({ file, bytes, total }) => {
        const quarter = quarters.passed(file, bytes, total);
        if (quarter !== undefined) process.stderr.write(`  ${file}: ${quarter * 25}% (${mb(bytes)})\n`);
      },
      retry: (file, error, attempt) => process.stderr.write(`  ${file}: interrupted (${error.message}); try ${attempt + 1}\n`),
      fellBack: (reason) => process.stderr.write(`the hub could not be reached (${reason}): using the cached snapshot\n`),
      stop: () => {},
    };
  }
  const bars = new cliProgress.MultiBar({ format: '{file} {bar} {percentage}% | {size}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
  const byFile = new Map<string, cliProgress.SingleBar>();
  return {
    downloading: (file, resumedFrom) => void byFile.set(file.path, bars.create(file.size, resumedFrom, { file: file.path.padEnd(28), size: mb(file.size) })),
    progress: ({ file, bytes }) => byFile.get(file)?.update(bytes),
    retry: (file, error, attempt) => bars.log(`${file}: interrupted (${error.message}); try ${attempt + 1}\n`),
    fellBack: (reason) => bars.log(`the hub could not be reached (${reason}): using the cached snapshot\n`),
    stop: () => bars.stop(),
  };
}

