// Regenerates the PrometheusRule of deploy/k8s/components/monitoring from deploy/monitoring/lorauter.rules.yaml, and
// the Grafana dashboard from its panels in test/helpers/monitoring.ts (tests fail when either is stale).
import { writeFileSync } from 'node:fs';
import { DASHBOARD_FILE, dashboardJson, PROMETHEUS_RULE_FILE, prometheusRuleYaml } from '../test/helpers/monitoring.js';

writeFileSync(PROMETHEUS_RULE_FILE, prometheusRuleYaml());
writeFileSync(DASHBOARD_FILE, dashboardJson());
console.log(`wrote ${PROMETHEUS_RULE_FILE} and ${DASHBOARD_FILE}`);
