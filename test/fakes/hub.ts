import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the Hugging Face hub, with the endpoints @huggingface/hub and huggingface_hub
 * call, answered as the hub answers them:
 * - `GET /api/models/{repo}/revision/{rev}`: model info (`sha` the commit a branch names);
 *   404 with `X-Error-Code: RepoNotFound` or `RevisionNotFound`;
 * - `GET /api/models/{repo}/tree/{rev}?recursive=true`: files and folders, `oid` (git), `size`,
 *   `lfs: {oid (SHA-256), size, pointerSize}` for LFS files; paginated with `Link: <…>; rel="next"`;
 * - `GET|HEAD /{repo}/resolve/{rev}/{path}`: a regular file itself (`ETag` its git oid), an LFS file
 *   as a 302 to a CDN on another origin (`X-Linked-Etag` its SHA-256, `X-Linked-Size`); both carry
 *   `X-Repo-Commit`; ranges answered with 206 and `Content-Range`; a gated repository refuses without
 *   a token (401) or with a token not granted (403), `X-Error-Code: GatedRepo`; a missing file is
 *   404 `EntryNotFound`.
 * The CDN serves blobs by SHA-256 with ranges and refuses a request that carries `Authorization`
 * (a signed URL takes none, as S3 refuses two authentications).
 */

export interface HubFile {
  bytes: Buffer;
  lfs: boolean;
}

interface Repo {
  commits: Map<string, Map<string, HubFile>>;
  refs: Map<string, string>;
  /** Tokens granted access; undefined: not gated. */
  gated?: Set<string>;
}

export interface HubRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  /** Which of the two servers answered. */
  server: 'hub' | 'cdn';
  /** The repository file whose bytes it was sent. */
  served?: string;
}

/** What happens to the next downloads of a file (by its path in the repository), one entry a download. */
export type DownloadFault = 'cut' | 'ignore-range' | 'corrupt' | 'stall';

const gitOid = (bytes: Buffer) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const isLfsPath = (path: string) => /\.(onnx|onnx_data|bin|safetensors)$/.test(path);

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

const refuse = (res: ServerResponse, status: number, code: string, message: string) => sendJson(res, status, { error: message }, { 'x-error-code': code });

export class StandInHub {
  readonly requests: HubRequest[] = [];
  readonly faults = new Map<string, DownloadFault[]>();
  /** Tree entries a page (the real hub pages at 1,000 entries; small here so that paging is used). */
  pageSize = 4;
  /** While true the hub accepts connections and never answers (the CDN too). */
  silent = false;
  private readonly repos = new Map<string, Repo>();
  private readonly blobs = new Map<string, Buffer>();
  /** An LFS blob's path in the repository it was pushed to (what a fault is queued by). */
  private readonly blobFiles = new Map<string, string>();
  private hub?: Server;
  private cdn?: Server;

  get url(): string {
    return `http://127.0.0.1:${(this.hub!.address() as AddressInfo).port}`;
  }

  private get cdnUrl(): string {
    return `http://127.0.0.1:${(this.cdn!.address() as AddressInfo).port}`;
  }

  /** Commits `files` to `repo` (created when new) on `main` or another branch; returns the commit id. */
  push(repo: string, files: Record<string, Buffer>, options: { branch?: string; gatedFor?: string[] } = {}): string {
    const entry: Repo = this.repos.get(repo) ?? { commits: new Map(), refs: new Map() };
    if (options.gatedFor) entry.gated = new Set(options.gatedFor);
    const commit = randomBytes(20).toString('hex');
    const tree = new Map<string, HubFile>();
    for (const [path, bytes] of Object.entries(files)) {
      const lfs = isLfsPath(path);
      tree.set(path, { bytes, lfs });
      if (lfs) {
        this.blobs.set(sha256(bytes), bytes);
        this.blobFiles.set(sha256(bytes), path);
      }
    }
    entry.commits.set(commit, tree);
    entry.refs.set(options.branch ?? 'main', commit);
    this.repos.set(repo, entry);
    return commit;
  }

  /** The requests that fetched bytes of a file (the one-byte probes the library makes first left out). */
  downloadsOf(file: string): HubRequest[] {
    return this.requests.filter((request) => request.served === file && request.range !== 'bytes=0-0');
  }

  async start(): Promise<this> {
    const listen = (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
      new Promise<Server>((resolve) => {
        const server = createServer(handler);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    this.hub = await listen((req, res) => this.answerHub(req, res));
    this.cdn = await listen((req, res) => this.answerCdn(req, res));
    return this;
  }

  async stop(): Promise<void> {
    for (const server of [this.hub, this.cdn]) {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    }
  }

  private record(req: IncomingMessage, server: 'hub' | 'cdn'): HubRequest {
    const request: HubRequest = {
      method: req.method ?? 'GET',
      path: decodeURIComponent((req.url ?? '/').split('?')[0]),
      range: req.headers.range,
      authorization: req.headers.authorization,
      server,
    };
    this.requests.push(request);
    return request;
  }

  private commitOf(repo: Repo, revision: string): string | undefined {
    if (repo.commits.has(revision)) return revision;
    return repo.refs.get(revision);
  }

  private answerHub(req: IncomingMessage, res: ServerResponse) {
    const request = this.record(req, 'hub');
    if (this.silent) return;
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    let match = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(path);
    if (match && req.method === 'GET') return this.modelInfo(res, match[1], match[2]);
    match = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(path);
    if (match && req.method === 'GET') return this.tree(res, url, match[1], match[2], match[3] ?? '');
    match = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (match && (req.method === 'GET' || req.method === 'HEAD')) return this.resolve(req, res, request, match[1], match[2], match[3]);
    refuse(res, 404, 'NotFound', `Cannot ${req.method} ${path}`);
  }

  private repoOr404(res: ServerResponse, name: string): Repo | undefined {
    const repo = this.repos.get(name);
    if (!repo) refuse(res, 404, 'RepoNotFound', 'Repository not found');
    return repo;
  }

  private modelInfo(res: ServerResponse, name: string, revision: string) {
    const repo = this.repoOr404(res, name);
    if (!repo) return;
    const commit = this.commitOf(repo, revision === 'HEAD' ? 'main' : revision);
    if (!commit) return refuse(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    sendJson(res, 200, {
      _id: createHash('md5').update(name).digest('hex').slice(0, 24),
      id: name,
      sha: commit,
      private: false,
      gated: repo.gated ? 'manual' : false,
      downloads: 0,
      likes: 0,
      lastModified: '2026-12-01T00:00:00.000Z',
      pipeline_tag: 'feature-extraction',
    });
  }

  private tree(res: ServerResponse, url: URL, name: string, revision: string, under: string) {
    const repo = this.repoOr404(res, name);
    if (!repo) return;
    const commit = this.commitOf(repo, revision);
    if (!commit) return refuse(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    const recursive = url.searchParams.get('recursive') === 'true';
    const prefix = under ? `${under}/` : '';
    const entries: object[] = [];
    const folders = new Set<string>();
    for (const [path, file] of [...repo.commits.get(commit)!].sort(([a], [b]) => a.localeCompare(b))) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length).split('/');
      for (let depth = 1; depth < rest.length && (recursive || depth === 1); depth++) {
        const folder = prefix + rest.slice(0, depth).join('/');
        if (!folders.has(folder)) {
          folders.add(folder);
          entries.push({ type: 'directory', oid: gitOid(Buffer.from(folder)), size: 0, path: folder });
        }
      }
      if (!recursive && rest.length > 1) continue;
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(file.bytes)}\nsize ${file.bytes.length}\n`);
      entries.push({
        type: 'file',
        oid: gitOid(file.lfs ? pointer : file.bytes),
        size: file.bytes.length,
        path,
        ...(file.lfs ? { lfs: { oid: sha256(file.bytes), size: file.bytes.length, pointerSize: pointer.length } } : {}),
      });
    }
    const cursor = Number(url.searchParams.get('cursor') ?? 0);
    const page = entries.slice(cursor, cursor + this.pageSize);
    const headers: Record<string, string> = {};
    if (cursor + this.pageSize < entries.length) {
      const next = new URL(url.pathname + url.search, this.url);
      next.searchParams.set('cursor', String(cursor + this.pageSize));
      headers.link = `<${next.href}>; rel="next"`;
    }
    sendJson(res, 200, page, headers);
  }

  private resolve(req: IncomingMessage, res: ServerResponse, request: HubRequest, name: string, revision: string, path: string) {
    const repo = this.repoOr404(res, name);
    if (!repo) return;
    const commit = this.commitOf(repo, revision);
    if (!commit) return refuse(res, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    if (repo.gated) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token) return refuse(res, 401, 'GatedRepo', `Access to model ${name} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      if (!repo.gated.has(token)) return refuse(res, 403, 'GatedRepo', `Access to model ${name} is restricted and you are not in the authorized list. Visit ${this.url}/${name} to ask for access.`);
    }
    const file = repo.commits.get(commit)!.get(path);
    if (!file) return refuse(res, 404, 'EntryNotFound', 'Entry not found');
    if (file.lfs) {
      const oid = sha256(file.bytes);
      res.writeHead(302, {
        location: `${this.cdnUrl}/blobs/${oid}?X-Amz-Signature=${randomBytes(8).toString('hex')}`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': String(file.bytes.length),
        etag: `"${gitOid(file.bytes)}"`,
      });
      return res.end();
    }
    this.sendBytes(req, res, request, path, file.bytes, { etag: `"${gitOid(file.bytes)}"`, 'x-repo-commit': commit });
  }

  private answerCdn(req: IncomingMessage, res: ServerResponse) {
    const request = this.record(req, 'cdn');
    if (this.silent) return;
    const path = (req.url ?? '/').split('?')[0];
    const oid = /^\/blobs\/([0-9a-f]{64})$/.exec(path)?.[1];
    const bytes = oid ? this.blobs.get(oid) : undefined;
    if (!bytes) return refuse(res, 404, 'NoSuchKey', 'The specified key does not exist.');
    if (req.headers.authorization) return refuse(res, 400, 'InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified');
    this.sendBytes(req, res, request, this.blobFiles.get(oid!)!, bytes, { etag: `"${oid}"` });
  }

  /** The bytes, or the range asked for; a fault queued for the file changes what is sent. */
  private sendBytes(req: IncomingMessage, res: ServerResponse, request: HubRequest, file: string, bytes: Buffer, headers: Record<string, string>) {
    request.served = file;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const probe = req.headers.range === 'bytes=0-0';
    const fault = !probe && req.method === 'GET' ? this.faults.get(file)?.shift() : undefined;
    const base = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', ...headers };
    if (range && fault !== 'ignore-range') {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
        return res.end();
      }
      res.writeHead(206, { ...base, 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': String(end - start + 1) });
      return this.body(req, res, bytes.subarray(start, end + 1), fault);
    }
    res.writeHead(200, { ...base, 'content-length': String(bytes.length) });
    this.body(req, res, bytes, fault);
  }

  private body(req: IncomingMessage, res: ServerResponse, bytes: Buffer, fault: DownloadFault | undefined) {
    if (req.method === 'HEAD') return res.end();
    const half = Math.floor(bytes.length / 2);
    if (fault === 'cut') {
      res.write(bytes.subarray(0, half));
      setImmediate(() => res.socket?.destroy());
      return;
    }
    if (fault === 'stall') {
      res.write(bytes.subarray(0, half));
      return;
    }
    if (fault === 'corrupt') {
      const wrong = Buffer.from(bytes);
      wrong[half] ^= 0xff;
      return res.end(wrong);
    }
    res.end(bytes);
  }
}

export async function startStandInHub(): Promise<StandInHub> {
  return new StandInHub().start();
}
