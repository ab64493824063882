import { downloadFile, HubApiError, type ListFileEntry } from '@huggingface/hub';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import lockfile from 'proper-lockfile';
import type { RepoCache } from './hub-cache.js';
import { failureOf, HubTimeoutError, RangeIgnoredError, type HubFetchLog } from './hub-fetch.js';

/** A file of a repository at one commit, as the hub's tree lists it. */
export interface RepoFile {
  path: string;
  size: number;
  /**
   * Its blob's name in the cache and what its bytes must hash to: the SHA-256 of an LFS file, else
   * its git blob id (SHA-1 of `blob <size>\0` and the bytes).
   */
  etag: string;
  lfs: boolean;
}

export function repoFile(entry: ListFileEntry): RepoFile {
  if (entry.lfs) return { path: entry.path, size: entry.lfs.size, etag: entry.lfs.oid, lfs: true };
  if (!entry.oid) throw new Error(`the hub listed ${entry.path} without an object id`);
  return { path: entry.path, size: entry.size, etag: entry.oid, lfs: false };
}

export interface DownloadProgress {
  file: string;
  bytes: number;
  total: number;
}

export interface DownloadContext {
  repo: string;
  commit: string;
  hubUrl: string;
  accessToken?: string;
  fetch: typeof fetch;
  /** What that fetch saw (to tell why a download stream was aborted). */
  fetchLog: HubFetchLog;
  cache: RepoCache;
  retries: number;
  /** How long to wait for another process that is downloading the same file (its lock). */
  lockWaitMs: number;
  /** A download begins, taken up at `resumedFrom` bytes when an earlier one left them. */
  onStart?(file: RepoFile, resumedFrom: number): void;
  onProgress?(progress: DownloadProgress): void;
  onRetry?(file: string, error: Error, attempt: number): void;
}

export class VerificationError extends Error {
  override name = 'VerificationError';
}

/** A download's stream was aborted (the library's blob streams give only a message: a failed range request). */
export class DownloadInterruptedError extends Error {
  override name = 'DownloadInterruptedError';
}

/** Worth another try from where the download stopped: a cut or silent connection, a 5xx or 429, a range ignored, bytes that did not verify. */
export function isTransient(error: unknown): boolean {
  if (error instanceof HubTimeoutError || error instanceof RangeIgnoredError || error instanceof VerificationError || error instanceof DownloadInterruptedError) return true;
  if (error instanceof HubApiError) return error.statusCode >= 500 || error.statusCode === 429;
  // undici: "fetch failed" (no connection), "terminated" (cut while reading), socket errors.
  return error instanceof TypeError || (error as NodeJS.ErrnoException)?.code === 'ECONNRESET' || (error as Error)?.name === 'SocketError';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bytes a partial download holds (0 when there is none). */
const bytesIn = (path: string) => (existsSync(path) ? statSync(path).size : 0);

async function digestOf(path: string, file: RepoFile): Promise<string> {
  const hash = file.lfs ? createHash('sha256') : createHash('sha1').update(`blob ${statSync(path).size}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function transfer(file: RepoFile, partial: string, context: DownloadContext): Promise<void> {
  const start = bytesIn(partial);
  const source = await downloadFile({
    repo: { type: 'model', name: context.repo },
    path: file.path,
    revision: context.commit,
    hubUrl: context.hubUrl,
    accessToken: context.accessToken,
    fetch: context.fetch,
  });
  if (!source) throw new Error(`the hub lists ${file.path} at ${context.commit} but has no such file`);
  if (source.size !== file.size) throw new VerificationError(`${file.path}: the hub sends ${source.size} bytes, its tree lists ${file.size}`);
  if (start === file.size) return;
  let bytes = start;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      context.onProgress?.({ file: file.path, bytes, total: file.size });
      done(null, chunk);
    },
  });
  const body = (start > 0 ? source.slice(start) : source).stream() as unknown as WebReadableStream;
  await pipeline(Readable.fromWeb(body), counter, createWriteStream(partial, { flags: 'a' }));
}

/**
 * Puts one file's bytes in the cache's blobs, whole and verified, or throws: written to
 * `<blob>.incomplete` (taken up where it stopped, by this process or an earlier one), checked
 * against the hub's size and hash, then renamed. A blob is never there half-written.
 */
export async function downloadBlob(file: RepoFile, context: DownloadContext): Promise<number> {
  const blob = context.cache.blobPath(file.etag);
  if (existsSync(blob)) return 0;
  mkdirSync(dirname(blob), { recursive: true });
  // Another gateway or pull on a shared volume waits.
  const lockPath = context.cache.lockPath(file.etag);
  mkdirSync(dirname(lockPath), { recursive: true });
  const release = await lockfile.lock(blob, {
    lockfilePath: lockPath,
    realpath: false,
    stale: 30_000,
    // By default a lock found stale while held (an event loop blocked past `stale`) throws from a timer and ends the
    // process; the bytes are verified before they are kept, so going on is safe.
    onCompromised: () => {},
    retries: { retries: Math.max(1, Math.ceil(context.lockWaitMs / 1000)), factor: 1, minTimeout: 1000, maxTimeout: 1000 },
  });
  try {
    if (existsSync(blob)) return 0;
    const partial = `${blob}.incomplete`;
    const resumedFrom = bytesIn(partial);
    context.onStart?.(file, resumedFrom);
    for (let attempt = 0; ; attempt++) {
      try {
        if (bytesIn(partial) > file.size) rmSync(partial);
        await transfer(file, partial, context);
        const size = statSync(partial).size;
        const digest = size === file.size ? await digestOf(partial, file) : '';
        if (digest !== file.etag) {
          rmSync(partial, { force: true });
          throw new VerificationError(`${file.path}: the bytes received (${size} of ${file.size}) do not hash to ${file.etag}`);
        }
        break;
      } catch (reason) {
        const found = failureOf(reason, context.fetchLog);
        const error = typeof found === 'string' ? new DownloadInterruptedError(found) : found;
        if (error instanceof RangeIgnoredError) rmSync(partial, { force: true });
        if (!isTransient(error) || attempt >= context.retries) throw error;
        context.onRetry?.(file.path, error as Error, attempt + 1);
        await sleep(Math.min(250 * 2 ** attempt, 4000));
      }
    }
    renameSync(partial, blob);
    return file.size - resumedFrom;
  } finally {
    await release();
  }
}
