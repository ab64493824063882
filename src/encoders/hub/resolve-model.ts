import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HubSettings } from '../../config/schema.js';
import { EncoderSetupError } from '../errors.js';
import { askedGraphs, ExportFilesError, selectExportFiles, type ExportSelection } from '../onnx/export-files.js';
import type { ModelSource } from '../onnx/model-folder.js';
import { downloadBlob, isTransient, repoFile, type DownloadProgress, type RepoFile } from './download.js';
import { hubCacheDir, RepoCache, storedTokenPath } from './hub-cache.js';
import { hubFetch, type HubFetchLog } from './hub-fetch.js';
import { COMMIT, describeModelId, type HubModelId } from './model-id.js';

/** A hub model in the cache, ready to load: its snapshot folder and graph, and where it came from. */
export interface ResolvedModel {
  dir: string;
  graph: string;
  source: ModelSource;
  /** Files fetched this time (0 when the cache had them all) and their bytes. */
  downloaded: { files: number; bytes: number };
  /** True when the hub was not asked (offline, a pinned commit already cached, or the hub unreachable). */
  fromCache: boolean;
}

export interface HubEvents {
  progress?(progress: DownloadProgress): void;
  downloading?(file: RepoFile, resumedFrom: number): void;
  retry?(file: string, error: Error, attempt: number): void;
  /** The hub could not be reached: the cached snapshot is used instead. */
  fellBack?(reason: string, commit: string): void;
  /** The model is in the cache, ready to load. */
  resolved?(model: ResolvedModel): void;
}

export interface ResolveOptions {
  hub: HubSettings;
  quantized: boolean;
  events?: HubEvents;
}

function tokenOf(hub: HubSettings): string | undefined {
  if (hub.token) return hub.token;
  const path = storedTokenPath(hub);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() || undefined : undefined;
}

/** The export as the cache holds it at `commit`, or undefined when its graph (as asked) or a required file is not there. */
function cachedExport(cache: RepoCache, commit: string, quantized: boolean): ExportSelection | undefined {
  try {
    const selection = selectExportFiles(cache.snapshotFiles(commit), quantized, cache.repo);
    // Offline the full graph must not silently fall back on a quantized one that happens to be cached.
    return askedGraphs(quantized).includes(selection.graph) ? selection : undefined;
  } catch {
    return undefined;
  }
}

/** The model at `commit`; without `downloaded`, served from the cache without asking the hub. */
function resolvedModel(cache: RepoCache, id: HubModelId, commit: string, selection: ExportSelection, downloaded?: ResolvedModel['downloaded']): ResolvedModel {
  const dir = cache.snapshotDir(commit);
  return { dir, graph: join(dir, selection.graph), source: { repo: id.repo, revision: id.revision, commit }, downloaded: downloaded ?? { files: 0, bytes: 0 }, fromCache: !downloaded };
}

const hubUrlOf = (hub: HubSettings) => hub.endpoint.replace(/\/$/, '');

/** What to do about a refusal or failure of the hub, as a start-up error. */
function explain(error: unknown, id: HubModelId, hub: HubSettings, token: string | undefined, log: HubFetchLog): EncoderSetupError {
  const name = describeModelId(id);
  const page = `${hubUrlOf(hub)}/${id.repo}`;
  if (error instanceof ExportFilesError) return new EncoderSetupError(`LORAUTER_ENCODER_MODEL=${name}: ${error.message}`);
  if (error instanceof HubApiError) {
    const said = error.message.split('. URL:')[0];
    if (error.statusCode === 401) {
      return new EncoderSetupError(
        `LORAUTER_ENCODER_MODEL=${name}: the hub refused access (401${log.lastErrorCode ? `, ${log.lastErrorCode}` : ''}: ${said}). ${token ? 'The token given (HF_TOKEN) was not accepted.' : 'Set HF_TOKEN to a token with access.'} A gated model's conditions must first be accepted at ${page}.`,
      );
    }
    if (error.statusCode === 403) {
      return new EncoderSetupError(`LORAUTER_ENCODER_MODEL=${name}: the token has no access (403${log.lastErrorCode ? `, ${log.lastErrorCode}` : ''}: ${said}). Request access at ${page}, or use a token of an account that has it.`);
    }
    if (error.statusCode === 404 && log.lastErrorCode === 'RevisionNotFound') {
      return new EncoderSetupError(`LORAUTER_ENCODER_MODEL=${name}: ${id.repo} has no revision "${id.revision}" (a branch, tag or 40-character commit id).`);
    }
    if (error.statusCode === 404) {
      return new EncoderSetupError(
        `LORAUTER_ENCODER_MODEL=${name}: no such model at ${hub.endpoint} (a private one answers 404 without HF_TOKEN), and no such local folder (${join(process.cwd(), id.repo)} does not exist).`,
      );
    }
  }
  if (isTransient(error)) {
    return new EncoderSetupError(
      `LORAUTER_ENCODER_MODEL=${name}: the hub at ${hub.endpoint} could not be reached or did not finish (${(error as Error).message}), and the cache (${hubCacheDir(hub)}) does not hold the model. Check HF_ENDPOINT and the network, or fill the cache where the hub is reachable (\`lorauter models pull ${name}\`) and start with HF_HUB_OFFLINE=1.`,
    );
  }
  if ((error as NodeJS.ErrnoException)?.code === 'ELOCKED') {
    return new EncoderSetupError(`LORAUTER_ENCODER_MODEL=${name}: another process kept downloading the same file for too long (${(error as Error).message}); start again once it is done.`);
  }
  return new EncoderSetupError(`LORAUTER_ENCODER_MODEL=${name}: ${(error as Error).message}`);
}

function offlineMissing(id: HubModelId, cache: RepoCache, commit: string | undefined, quantized: boolean): EncoderSetupError {
  const name = describeModelId(id);
  const what = commit
    ? (() => {
        try {
          selectExportFiles(cache.snapshotFiles(commit), quantized, `its cached snapshot ${commit}`);
          return `its cached snapshot ${commit} lacks the ${quantized ? 'quantized' : 'full-precision'} graph`;
        } catch (error) {
          return (error as Error).message;
        }
      })()
    : `the cache (${cache.cacheDir}) has no ${id.revision && COMMIT.test(id.revision) ? `snapshot ${id.revision}` : `ref "${id.revision ?? 'main'}"`} of ${id.repo}`;
  return new EncoderSetupError(
    `LORAUTER_ENCODER_MODEL=${name} with HF_HUB_OFFLINE=1: ${what}. Run \`lorauter models pull ${name}${quantized ? ' --quantized' : ''}\` where the hub is reachable (with the same HF_HUB_CACHE), or unset HF_HUB_OFFLINE.`,
  );
}

/**
 * Finds a hub model's ONNX export and puts the files the encoder reads in the Hugging Face cache:
 * the revision resolved to a commit, only the needed files downloaded (verified, resumable, never
 * half-written), the ref recorded. Offline, or when the hub cannot be reached, the cache serves.
 */
export async function resolveHubModel(id: HubModelId, options: ResolveOptions): Promise<ResolvedModel> {
  const { hub, quantized, events = {} } = options;
  const cache = new RepoCache(hubCacheDir(hub), id.repo);
  const pinned = id.revision !== undefined && COMMIT.test(id.revision) ? id.revision : undefined;
  const cachedCommit = pinned ?? cache.readRef(id.revision ?? 'main');
  const cached = cachedCommit ? cachedExport(cache, cachedCommit, quantized) : undefined;
  if (hub.offline) {
    if (!cachedCommit || !cached) throw offlineMissing(id, cache, cachedCommit, quantized);
    return resolvedModel(cache, id, cachedCommit, cached);
  }
  // A commit's files never change: a pinned model in the cache needs no request at all.
  if (pinned && cached) return resolvedModel(cache, id, pinned, cached);

  const token = tokenOf(hub);
  const log: HubFetchLog = {};
  const fetch = hubFetch(hub.timeoutMs, log);
  const access = { hubUrl: hubUrlOf(hub), accessToken: token, fetch };
  let commit: string;
  let listed: RepoFile[];
  try {
    commit = pinned ?? (await modelInfo({ name: id.repo, revision: id.revision ?? 'main', additionalFields: ['sha'], ...access })).sha;
    if (!commit || !COMMIT.test(commit)) throw new Error(`the hub answered without a commit id for ${describeModelId(id)}`);
    listed = [];
    for await (const entry of listFiles({ repo: { type: 'model', name: id.repo }, recursive: true, revision: commit, ...access })) {
      if (entry.type === 'file') listed.push(repoFile(entry));
    }
  } catch (error) {
    if (cachedCommit && cached && isTransient(error)) {
      events.fellBack?.((error as Error).message, cachedCommit);
      return resolvedModel(cache, id, cachedCommit, cached);
    }
    throw explain(error, id, hub, token, log);
  }
  const downloaded = { files: 0, bytes: 0 };
  try {
    const selection = selectExportFiles(listed.map((file) => file.path), quantized, `${describeModelId(id)} (commit ${commit})`);
    const byPath = new Map(listed.map((file) => [file.path, file]));
    for (const path of selection.files) {
      if (cache.has(commit, path)) continue;
      const file = byPath.get(path)!;
      const bytes = await downloadBlob(file, {
        repo: id.repo,
        commit,
        ...access,
        fetchLog: log,
        cache,
        retries: hub.retries,
        lockWaitMs: hub.lockWaitMs,
        onStart: events.downloading,
        onProgress: events.progress,
        onRetry: events.retry,
      });
      cache.link(commit, path, file.etag);
      downloaded.files++;
      downloaded.bytes += bytes;
    }
    if (id.revision !== commit) cache.writeRef(id.revision ?? 'main', commit);
    return resolvedModel(cache, id, commit, selection, downloaded);
  } catch (error) {
    throw explain(error, id, hub, token, log);
  }
}
