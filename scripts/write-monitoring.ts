// Regenerates the PrometheusRule of deploy/k8s/components/monitoring from deploy/monitoring/lorauter.rules.yaml
// (a test fails when it is stale).
import { writeFileSync } from 'node:fs';
import { prometheusRuleYaml } from '../test/helpers/monitoring.js';

writeFileSync(new URL('../deploy/k8s/components/monitoring/prometheus-rule.yaml', import.meta.url), prometheusRuleYaml());
console.log('wrote deploy/k8s/components/monitoring/prometheus-rule.yaml');
