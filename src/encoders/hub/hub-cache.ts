import { getRepoFolderName } from '@huggingface/hub';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { HubSettings } from '../../config/schema.js';

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface: as huggingface_hub finds it. */
function hubHome(settings: Pick<HubSettings, 'home'>, env: NodeJS.ProcessEnv): string {
  return settings.home ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/** The hub cache folder, found the way huggingface_hub finds it, so that Python tools and the gateway share one. */
export function hubCacheDir(settings: Pick<HubSettings, 'cacheDir' | 'home'>, env: NodeJS.ProcessEnv = process.env): string {
  return settings.cacheDir ?? join(hubHome(settings, env), 'hub');
}

/** Where the token of `huggingface-cli login` is kept. */
export function storedTokenPath(settings: Pick<HubSettings, 'home' | 'tokenPath'>, env: NodeJS.ProcessEnv = process.env): string {
  return settings.tokenPath ?? join(hubHome(settings, env), 'token');
}

/** The files under `root` that `keep` accepts (all by default), by their `/`-separated paths from it; none when it is absent. */
function filesBelow(root: string, keep: (path: string) => boolean = () => true): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (keep(path)) files.push(relative(root, path).split('\\').join('/'));
    }
  };
  if (existsSync(root)) walk(root);
  return files;
}

/**
 * One model repository in the standard cache layout (`models--owner--name/`): `blobs/<etag>` hold
 * the files' bytes, `snapshots/<commit>/<path>` link to them, `refs/<revision>` name a commit.
 */
export class RepoCache {
  readonly folder: string;

  constructor(readonly cacheDir: string, readonly repo: string) {
    this.folder = join(cacheDir, getRepoFolderName({ type: 'model', name: repo }));
  }

  blobPath(etag: string): string {
    return join(this.folder, 'blobs', etag);
  }

  /** Beside huggingface_hub's own `.locks/<repo folder>/` (flock()ed files, which Node cannot take): a lock of our own. */
  lockPath(etag: string): string {
    return join(this.cacheDir, '.locks', relative(this.cacheDir, this.folder), `${etag}.lorauter-lock`);
  }

  snapshotDir(commit: string): string {
    return join(this.folder, 'snapshots', commit);
  }

  /** The commit a branch or tag named the last time the hub was asked. */
  readRef(revision: string): string | undefined {
    const path = join(this.folder, 'refs', revision);
    if (!existsSync(path)) return undefined;
    const commit = readFileSync(path, 'utf8').trim();
    return commit || undefined;
  }

  writeRef(revision: string, commit: string): void {
    const path = join(this.folder, 'refs', revision);
    mkdirSync(dirname(path), { recursive: true });
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, commit);
    renameSync(temporary, path);
  }

  /** True when the snapshot holds the file (its link resolves to a blob). */
  has(commit: string, file: string): boolean {
    return existsSync(join(this.snapshotDir(commit), file));
  }

  /** Every file of a cached snapshot (a link that resolves), by its path in the repository. */
  snapshotFiles(commit: string): string[] {
    const root = this.snapshotDir(commit);
    return filesBelow(root, (path) => existsSync(path) && statSync(path).isFile()).sort();
  }

  /** Links `snapshots/<commit>/<file>` to its blob, relatively as huggingface_hub does (a copy where links are refused). */
  link(commit: string, file: string, etag: string): void {
    const pointer = join(this.snapshotDir(commit), file);
    const blob = this.blobPath(etag);
    mkdirSync(dirname(pointer), { recursive: true });
    rmSync(pointer, { force: true });
    try {
      symlinkSync(relative(dirname(pointer), blob), pointer);
    } catch {
      copyFileSync(blob, pointer);
    }
  }
}

/** One revision of a model in the cache, as `lorauter models list` shows it. */
export interface CachedRevision {
  repo: string;
  commit: string;
  /** Branches and tags that name it (refs/…). */
  refs: string[];
  files: string[];
  /** Bytes of the blobs its files link to. */
  bytes: number;
  snapshot: string;
}

function refsOf(folder: string): Map<string, string[]> {
  const byCommit = new Map<string, string[]>();
  const root = join(folder, 'refs');
  for (const ref of filesBelow(root)) {
    const commit = readFileSync(join(root, ref), 'utf8').trim();
    byCommit.set(commit, [...(byCommit.get(commit) ?? []), ref]);
  }
  return byCommit;
}

/**
 * Every model revision in a hub cache, files in subfolders included. (@huggingface/hub's
 * scanCacheDir, as of 2.17, skips subfolders such as onnx/ and a repository without refs/.)
 */
export function listCachedModels(cacheDir: string): CachedRevision[] {
  if (!existsSync(cacheDir)) return [];
  const revisions: CachedRevision[] = [];
  for (const entry of readdirSync(cacheDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('models--')) continue;
    const repo = entry.name.slice('models--'.length).split('--').join('/');
    const cache = new RepoCache(cacheDir, repo);
    const snapshots = join(cache.folder, 'snapshots');
    if (!existsSync(snapshots)) continue;
    const refs = refsOf(cache.folder);
    for (const commit of readdirSync(snapshots).sort()) {
      const files = cache.snapshotFiles(commit);
      const bytes = files.reduce((sum, file) => sum + statSync(join(cache.snapshotDir(commit), file)).size, 0);
      revisions.push({ repo, commit, refs: refs.get(commit) ?? [], files, bytes, snapshot: cache.snapshotDir(commit) });
    }
  }
  return revisions.sort((a, b) => a.repo.localeCompare(b.repo) || b.refs.length - a.refs.length);
}
