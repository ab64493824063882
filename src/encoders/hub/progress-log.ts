import type { Logger } from 'pino';
import { QuarterMarks } from './quarter-marks.js';
import type { HubEvents } from './resolve-model.js';

const mb = (bytes: number) => Math.round((bytes / 1e6) * 10) / 10;

/** Hub events as log lines: each download's start, its progress every `everyMs` (and at each quarter), retries, the model resolved. */
export function hubLog(logger: Logger, everyMs = 5000, now: () => number = Date.now): HubEvents {
  const shownAt = new Map<string, number>();
  const quarters = new QuarterMarks();
  return {
    downloading: (file, resumedFrom) => {
      shownAt.set(file.path, now());
      quarters.start(file.path);
      logger.info({ file: file.path, mb: mb(file.size), ...(resumedFrom > 0 ? { resumed_from_mb: mb(resumedFrom) } : {}) }, resumedFrom > 0 ? 'resuming model file download' : 'downloading model file');
    },
    progress: ({ file, bytes, total }) => {
      const at = shownAt.get(file);
      if (at === undefined || bytes >= total) return;
      if (quarters.passed(file, bytes, total) !== undefined || now() - at >= everyMs) {
        shownAt.set(file, now());
        logger.info({ file, mb: mb(bytes), of_mb: mb(total), percent: Math.floor((100 * bytes) / total) }, 'downloading model file');
      }
    },
    retry: (file, error, attempt) => logger.warn({ file, attempt, err: error.message }, 'model file download interrupted: taking it up again'),
    fellBack: (reason, commit) => logger.warn({ commit, reason }, 'the hub could not be reached: using the cached snapshot'),
    resolved: (model) =>
      logger.info(
        { model: model.source.repo, revision: model.source.revision ?? 'main', commit: model.source.commit, graph: model.graph, downloaded_files: model.downloaded.files, downloaded_mb: mb(model.downloaded.bytes), from_cache: model.fromCache },
        'encoder model resolved',
      ),
  };
}
