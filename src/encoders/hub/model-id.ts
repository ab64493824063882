import { existsSync } from 'node:fs';

/** A model on the Hugging Face hub: `owner/name`, optionally pinned to a revision (branch, tag or commit). */
export interface HubModelId {
  repo: string;
  revision?: string;
}

const REPO = /^[A-Za-z0-9][\w.-]*\/[\w.-]*[A-Za-z0-9_]$/;
const REVISION = /^[\w.-]+(?:\/[\w.-]+)*$/;
export const COMMIT = /^[0-9a-f]{40}$/;

/**
 * `LORAUTER_ENCODER_MODEL` is a hub id when it reads as one (`owner/name[@revision]`) and no such
 * file or folder exists here: a path wins, so `models/minilm` next to the gateway stays a folder.
 */
export function hubModelId(text: string): HubModelId | undefined {
  if (existsSync(text) || /^[./~]/.test(text)) return undefined;
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? undefined : text.slice(at + 1);
  if (!REPO.test(repo) || repo.includes('..')) return undefined;
  if (revision !== undefined && (!REVISION.test(revision) || revision.split('/').some((part) => part === '..' || part === '.'))) return undefined;
  return { repo, revision };
}

export const describeModelId = ({ repo, revision }: HubModelId) => (revision ? `${repo}@${revision}` : repo);
