import { readFileSync } from 'node:fs';
import YAML from 'yaml';

export const RULES_FILE = new URL('../../deploy/monitoring/lorauter.rules.yaml', import.meta.url).pathname;
export const PROMETHEUS_RULE_FILE = new URL('../../deploy/k8s/components/monitoring/prometheus-rule.yaml', import.meta.url).pathname;

/** The rules file's groups as a prometheus-operator PrometheusRule: what scripts/write-monitoring.ts writes. */
export function prometheusRuleYaml(): string {
  const { groups } = YAML.parse(readFileSync(RULES_FILE, 'utf8'));
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'lorauter', labels: { 'app.kubernetes.io/name': 'lorauter' } },
    spec: { groups },
  };
  return `# Generated from deploy/monitoring/lorauter.rules.yaml by npm run monitoring: edit that file, not this one.\n${YAML.stringify(rule, { lineWidth: 0 })}`;
}
