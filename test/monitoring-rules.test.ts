// The alerting rules, checked and unit-tested with the real promtool (Debian's prometheus package): each alert
// fires on series that should trigger it and stays quiet on series that should not.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

import { RULES_FILE as RULES } from './helpers/monitoring.js';

const gateway = { job: 'lorauter', instance: 'gw-1' };

interface Series {
  series: string;
  values: string;
}
interface AlertCase {
  /** When the alert is evaluated (promtool duration). */
  at: string;
  firing: Series[];
  quiet: Series[];
  /** Labels the firing alert carries besides the rule's own. */
  labels: Record<string, string>;
}

const selector = (name: string, labels: Record<string, string>) => `${name}{${Object.entries({ ...gateway, ...labels }).map(([key, value]) => `${key}="${value}"`).join(',')}}`;
const series = (name: string, labels: Record<string, string>, values: string): Series => ({ series: selector(name, labels), values });
const byJob = { job: 'lorauter' };
const byInstance = { ...gateway };

/** A request-duration histogram's objective bucket and count: `fastPerMinute` of every 100 a minute within the objective. */
const latency = (name: string, labels: Record<string, string>, le: string, fastPerMinute: number, minutes = 120) => [
  series(`${name}_bucket`, { ...labels, le }, `0+${fastPerMinute}x${minutes}`),
  series(`${name}_count`, labels, `0+100x${minutes}`),
];
/** A counter at `before` a minute for a day, then at `after` a minute for the last two hours. */
const shifted = (name: string, labels: Record<string, string>, before: number, after: number) =>
  series(name, labels, `0+${before}x1380 ${1380 * before + after}+${after}x119`);

const CASES: Record<string, AlertCase> = {
  LorauterDown: { at: '5m', firing: [series('up', {}, '0x10')], quiet: [series('up', {}, '1x10')], labels: byInstance },
  LorauterNotReady: { at: '8m', firing: [series('lorauter_ready', {}, '0x10')], quiet: [series('lorauter_ready', {}, '1 1 1 0 0 0 1 1 1 1')], labels: byInstance },
  LorauterUpstreamDown: { at: '5m', firing: [series('lorauter_upstream_up', {}, '0x10')], quiet: [series('lorauter_upstream_up', {}, '1x10')], labels: byInstance },
  LorauterRedisDown: { at: '5m', firing: [series('lorauter_redis_up', {}, '0x10')], quiet: [series('lorauter_redis_up', {}, '1 1 0 1 1 1 1 1 1 1')], labels: byInstance },
  LorauterHighErrorRate: {
    at: '15m',
    firing: [series('lorauter_http_requests_total', { route: '/v1/chat/completions', method: 'POST', status: '200' }, '0+60x20'), series('lorauter_http_requests_total', { route: '/v1/chat/completions', method: 'POST', status: '502' }, '0+10x20')],
    quiet: [series('lorauter_http_requests_total', { route: '/v1/chat/completions', method: 'POST', status: '200' }, '0+60x20'), series('lorauter_http_requests_total', { route: '/v1/chat/completions', method: 'POST', status: '502' }, '0+1x20')],
    labels: byJob,
  },
  LorauterUpstreamBusy: {
    at: '15m',
    firing: [series('lorauter_upstream_requests_total', { upstream: 'vllm', endpoint: 'chat', outcome: '200' }, '0+100x20'), series('lorauter_upstream_requests_total', { upstream: 'vllm', endpoint: 'chat', outcome: 'busy' }, '0+5x20')],
    quiet: [series('lorauter_upstream_requests_total', { upstream: 'vllm', endpoint: 'chat', outcome: '200' }, '0+100x20'), series('lorauter_upstream_requests_total', { upstream: 'vllm', endpoint: 'chat', outcome: 'busy' }, '0+0.5x20')],
    labels: byJob,
  },
  // Half the requests slow burns both budgets; 8% slow burns only the slow one's (between 6 and 14.4 times 1%).
  LorauterRouteLatencyBudgetBurn: { at: '90m', firing: latency('lorauter_http_request_duration_seconds', { route: '/v1/route' }, '0.025', 50), quiet: latency('lorauter_http_request_duration_seconds', { route: '/v1/route' }, '0.025', 92), labels: byJob },
  LorauterRouteLatencyBudgetBurnSlow: { at: '90m', firing: latency('lorauter_http_request_duration_seconds', { route: '/v1/route' }, '0.025', 92), quiet: latency('lorauter_http_request_duration_seconds', { route: '/v1/route' }, '0.025', 99.5), labels: byJob },
  LorauterAddedLatencyBudgetBurn: { at: '90m', firing: latency('lorauter_upstream_added_seconds', { upstream: 'vllm' }, '0.05', 50), quiet: latency('lorauter_upstream_added_seconds', { upstream: 'vllm' }, '0.05', 92), labels: byJob },
  LorauterAddedLatencyBudgetBurnSlow: { at: '90m', firing: latency('lorauter_upstream_added_seconds', { upstream: 'vllm' }, '0.05', 92), quiet: latency('lorauter_upstream_added_seconds', { upstream: 'vllm' }, '0.05', 99.5), labels: byJob },
  // A day at 10% of prompts sent to the base model, then two hours at 50% (or still at 10%).
  LorauterAbstentionShift: {
    at: '1500m',
    firing: [shifted('lorauter_adapter_decisions_total', { adapter: 'base' }, 10, 50), shifted('lorauter_adapter_decisions_total', { adapter: 'sst2' }, 90, 50)],
    quiet: [shifted('lorauter_adapter_decisions_total', { adapter: 'base' }, 10, 10), shifted('lorauter_adapter_decisions_total', { adapter: 'sst2' }, 90, 90)],
    labels: byJob,
  },
  LorauterCompositionFallbackShift: {
    at: '1500m',
    firing: [shifted('lorauter_composition_fallbacks_total', { upstream: 'vllm', reason: 'merge_failed' }, 1, 40), shifted('lorauter_route_decisions_total', { endpoint: 'chat' }, 100, 100)],
    quiet: [shifted('lorauter_composition_fallbacks_total', { upstream: 'vllm', reason: 'merge_failed' }, 1, 1), shifted('lorauter_route_decisions_total', { endpoint: 'chat' }, 100, 100)],
    labels: byJob,
  },
  LorauterLowCompositionFidelity: {
    at: '60m',
    firing: [series('lorauter_composition_fidelity_sum', { upstream: 'vllm' }, '0+50x60'), series('lorauter_composition_fidelity_count', { upstream: 'vllm' }, '0+100x60')],
    quiet: [series('lorauter_composition_fidelity_sum', { upstream: 'vllm' }, '0+82x60'), series('lorauter_composition_fidelity_count', { upstream: 'vllm' }, '0+100x60')],
    labels: byJob,
  },
  LorauterMergeBuildsFailing: {
    at: '35m',
    firing: [series('lorauter_merge_builds_total', { outcome: 'done' }, '0+4x40'), series('lorauter_merge_builds_total', { outcome: 'failed' }, '0+2x40'), series('lorauter_merge_builds_total', { outcome: 'queued' }, '0+6x40')],
    quiet: [series('lorauter_merge_builds_total', { outcome: 'done' }, '0+10x40'), series('lorauter_merge_builds_total', { outcome: 'failed' }, '0+1x40'), series('lorauter_merge_builds_total', { outcome: 'queued' }, '0+11x40')],
    labels: byJob,
  },
  LorauterRegistryReloadRejected: {
    at: '5m',
    firing: [series('lorauter_registry_reloads_total', { result: 'rejected' }, '0 0 0 1 1 1 1 1 1 1'), series('lorauter_registry_reloads_total', { result: 'applied' }, '0 1 1 1 1 1 1 1 1 1')],
    quiet: [series('lorauter_registry_reloads_total', { result: 'rejected' }, '0x10'), series('lorauter_registry_reloads_total', { result: 'applied' }, '0 1 1 2 2 2 3 3 3 3')],
    labels: byJob,
  },
};

interface Rule {
  alert?: string;
  record?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const groups = (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups;
const alerts = groups.flatMap((group) => group.rules).filter((rule) => rule.alert);

t.test('promtool check rules: the rules file is valid', async (t) => {
  const output = execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  t.match(output, /SUCCESS: \d+ rules found/);
});

t.test('every alert has a firing and a quiet case, and promtool test rules passes them all', async (t) => {
  t.same(Object.keys(CASES).sort(), alerts.map((rule) => rule.alert!).sort(), 'one case per alert in the rules file');
  const tests = alerts.flatMap((rule) => {
    const item = CASES[rule.alert!];
    const expected = [{ exp_labels: { ...item.labels, ...rule.labels }, exp_annotations: rule.annotations ?? {} }];
    return [
      { interval: '1m', input_series: item.firing, alert_rule_test: [{ eval_time: item.at, alertname: rule.alert, exp_alerts: expected }] },
      { interval: '1m', input_series: item.quiet, alert_rule_test: [{ eval_time: item.at, alertname: rule.alert, exp_alerts: [] }] },
    ];
  });
  const dir = t.testdir();
  const file = join(dir, 'lorauter.rules.test.yaml');
  writeFileSync(file, YAML.stringify({ rule_files: [RULES], evaluation_interval: '1m', tests }));
  let output: string;
  try {
    output = execFileSync('promtool', ['test', 'rules', file], { encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    output = `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
  }
  t.match(output, /SUCCESS/, output.slice(0, 4000));
  t.equal(tests.length, 2 * alerts.length);
});
