import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import YAML from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: any;
}

const K8S = join(dirname(new URL(import.meta.url).pathname), '..', '..', 'deploy', 'k8s');

/** `kubectl kustomize DIR` (the real kustomize, offline): the objects a cluster would get. */
export function kustomize(dir: string): K8sObject[] {
  const rendered = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return YAML.parseAllDocuments(rendered).map((document) => {
    if (document.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${document.errors[0].message}`);
    return document.toJS() as K8sObject;
  });
}

/** An overlay with components added, as a user's own kustomization would add them. */
export function kustomizeWith(overlay: string, components: string[]): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'lorauter-kustomize-'));
  try {
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(dir, overlayRoot(overlay))],
      components: components.map((component) => relative(dir, join(K8S, 'components', component))),
    };
    writeFileSync(join(dir, 'kustomization.yaml'), YAML.stringify(kustomization));
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function overlayRoot(overlay: string): string {
  return join(K8S, 'overlays', overlay);
}
