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

export const DASHBOARD_FILE = new URL('../../deploy/monitoring/lorauter-dashboard.json', import.meta.url).pathname;

interface PanelSpec {
  title: string;
  unit: string;
  queries: [expr: string, legend: string][];
  description?: string;
}

const on = '{job=~"$job",instance=~"$instance"}';
const onWith = (matchers: string) => `{job=~"$job",instance=~"$instance",${matchers}}`;
const rate = (metric: string, matchers = '') => `rate(${metric}${matchers ? onWith(matchers) : on}[$__rate_interval])`;
const quantile = (q: number, metric: string, by = '') => `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (${rate(`${metric}_bucket`)}))`;

/** The dashboard's rows and panels: every query is run against a real Prometheus by test/monitoring-dashboard.test.ts. */
export const DASHBOARD_ROWS: [row: string, panels: PanelSpec[]][] = [
  ['Traffic', [
    { title: 'Requests by route', unit: 'reqps', queries: [[`sum by (route) (${rate('lorauter_http_requests_total')})`, '{{route}}']] },
    { title: 'Errors by route and status', unit: 'reqps', queries: [[`sum by (route, status) (${rate('lorauter_http_requests_total', 'status=~"[45].."')})`, '{{route}} {{status}}']] },
    { title: 'Answer time by route (p99)', unit: 's', queries: [[quantile(0.99, 'lorauter_http_request_duration_seconds', 'route'), '{{route}}']], description: 'Until the end of the answer, streams included' },
  ]],
  ['Routing', [
    { title: 'Routing time (p99): embedding by source, search', unit: 's', queries: [[quantile(0.99, 'lorauter_route_embed_seconds', 'source'), 'embed {{source}}'], [quantile(0.99, 'lorauter_route_search_seconds'), 'search']] },
    { title: 'Embeddings by source', unit: 'reqps', queries: [[`sum by (source) (${rate('lorauter_embedding_lookups_total')})`, '{{source}}']] },
    { title: 'Encoder prompts by thread', unit: 'reqps', queries: [[`sum by (thread) (${rate('lorauter_encoder_prompts_total')})`, '{{thread}}']] },
    { title: 'Confidence (p10, p50)', unit: 'percentunit', queries: [[quantile(0.1, 'lorauter_route_confidence'), 'p10'], [quantile(0.5, 'lorauter_route_confidence'), 'p50']] },
    { title: 'Share sent to the base model (abstained)', unit: 'percentunit', queries: [[`sum(${rate('lorauter_adapter_decisions_total', 'adapter="base"')}) / sum(${rate('lorauter_adapter_decisions_total')})`, 'abstained']] },
    { title: 'Decisions by adapter', unit: 'reqps', queries: [[`sum by (adapter) (${rate('lorauter_adapter_decisions_total')})`, '{{adapter}}']] },
  ]],
  ['Composition', [
    { title: 'Fidelity (mean, p10)', unit: 'percentunit', queries: [[`sum(${rate('lorauter_composition_fidelity_sum')}) / sum(${rate('lorauter_composition_fidelity_count')})`, 'mean'], [quantile(0.1, 'lorauter_composition_fidelity'), 'p10']], description: 'Share of the routed mixture served' },
    { title: 'Merge builds by outcome', unit: 'short', queries: [[`sum by (outcome) (increase(lorauter_merge_builds_total${on}[$__rate_interval]))`, '{{outcome}}']] },
    { title: 'Fallbacks to the nearest composition by reason', unit: 'reqps', queries: [[`sum by (reason) (${rate('lorauter_composition_fallbacks_total')})`, '{{reason}}']] },
    { title: 'Merged adapters live', unit: 'short', queries: [[`sum by (instance) (lorauter_live_merges${on})`, '{{instance}}']] },
    { title: 'Merge folder', unit: 'bytes', queries: [[`sum by (instance) (lorauter_merge_dir_bytes${on})`, '{{instance}}']] },
    { title: 'Merge build and load time (p90)', unit: 's', queries: [[quantile(0.9, 'lorauter_merge_build_seconds'), 'p90']] },
  ]],
  ['Upstream', [
    { title: 'Upstream time to headers (p50, p99)', unit: 's', queries: [[quantile(0.5, 'lorauter_upstream_duration_seconds', 'upstream'), 'p50 {{upstream}}'], [quantile(0.99, 'lorauter_upstream_duration_seconds', 'upstream'), 'p99 {{upstream}}']] },
    { title: 'Time the gateway adds before the upstream (p99)', unit: 's', queries: [[quantile(0.99, 'lorauter_upstream_added_seconds', 'upstream'), '{{upstream}}']] },
    { title: 'Upstream requests by outcome', unit: 'reqps', queries: [[`sum by (outcome) (${rate('lorauter_upstream_requests_total')})`, '{{outcome}}']], description: 'busy: refused by the gateway\'s queue for the upstream (503 upstream_busy)' },
  ]],
  ['Health and registry', [
    { title: 'Ready, upstream up, Redis up', unit: 'short', queries: [[`lorauter_ready${on}`, 'ready {{instance}}'], [`lorauter_upstream_up${on}`, 'upstream {{instance}}'], [`lorauter_redis_up${on}`, 'redis {{instance}}']] },
    { title: 'Registry version and tasks by replica', unit: 'short', queries: [[`lorauter_registry_version${on}`, 'version {{instance}}'], [`lorauter_tasks${on}`, 'tasks {{instance}}']] },
    { title: 'Routing index rebuild time (p90)', unit: 's', queries: [[quantile(0.9, 'lorauter_registry_rebuild_seconds'), 'p90']] },
    { title: 'Redis cache errors by operation', unit: 'reqps', queries: [[`sum by (operation) (${rate('lorauter_cache_errors_total')})`, '{{operation}}']] },
    { title: 'Event loop delay (p99) and memory', unit: 's', queries: [[`nodejs_eventloop_lag_p99_seconds${on}`, 'event loop p99 {{instance}}']] },
    { title: 'Resident memory', unit: 'bytes', queries: [[`process_resident_memory_bytes${on}`, '{{instance}}']] },
  ]],
];

/** The Grafana dashboard (provisioning-ready: the datasource is a variable): what scripts/write-monitoring.ts writes. */
export function dashboardJson(): string {
  const datasource = { type: 'prometheus', uid: '${datasource}' };
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const [row, specs] of DASHBOARD_ROWS) {
    panels.push({ id: id++, type: 'row', title: row, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y: y++ }, panels: [] });
    specs.forEach((spec, i) => {
      panels.push({
        id: id++,
        type: 'timeseries',
        title: spec.title,
        ...(spec.description ? { description: spec.description } : {}),
        datasource,
        gridPos: { h: 8, w: 8, x: (i % 3) * 8, y: y + Math.floor(i / 3) * 8 },
        fieldConfig: { defaults: { unit: spec.unit }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
        targets: spec.queries.map(([expr, legendFormat], q) => ({ datasource, expr, legendFormat, refId: String.fromCharCode(65 + q) })),
      });
    });
    y += Math.ceil(specs.length / 3) * 8;
  }
  const variable = (name: string, query: string) => ({ name, label: name, type: 'query', datasource, query: { query, refId: name }, definition: query, includeAll: true, multi: true, allValue: '.*', current: { text: 'All', value: '$__all' }, refresh: 2 });
  const dashboard = {
    uid: 'lorauter-gateway',
    title: 'LoRAuter Gateway',
    tags: ['lorauter'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        variable('job', 'label_values(lorauter_ready, job)'),
        variable('instance', 'label_values(lorauter_ready{job=~"$job"}, instance)'),
      ],
    },
    panels,
  };
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}
