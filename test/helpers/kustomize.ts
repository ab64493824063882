import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import YAML from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: any;
}

// What the manifests in deploy/k8s use of kustomize; anything else must fail the test, not be ignored.
const SUPPORTED_KEYS = new Set(['apiVersion', 'kind', 'resources']);

/**
 * `kubectl kustomize DIR` for the subset deploy/k8s uses (resources: files and directories, no
 * patches or generators), so the wiring test sees what a cluster would get.
 */
export function kustomize(dir: string): K8sObject[] {
  const kustomization = YAML.parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  for (const key of Object.keys(kustomization)) {
    if (!SUPPORTED_KEYS.has(key)) throw new Error(`${dir}/kustomization.yaml: "${key}" is not understood by the test's kustomize; extend test/helpers/kustomize.ts`);
  }
  return (kustomization.resources as string[]).flatMap((resource) => {
    const path = join(dir, resource);
    if (statSync(path).isDirectory()) return kustomize(path);
    return YAML.parseAllDocuments(readFileSync(path, 'utf8')).map((document) => {
      if (document.errors.length > 0) throw new Error(`${path}: ${document.errors[0].message}`);
      return document.toJS() as K8sObject;
    });
  });
}

export function overlayRoot(overlay: string): string {
  return join(dirname(new URL(import.meta.url).pathname), '..', '..', 'deploy', 'k8s', 'overlays', overlay);
}
