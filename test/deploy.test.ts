// No Docker engine or cluster here: the manifests are rendered with the real `kubectl kustomize`, the compose
// file parsed, and their wiring checked against the app itself (config names, probe paths, registry, shutdown grace).
import t, { type Test as Tap } from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { ENVIRONMENT, loadConfig } from '../src/config/load.js';
import { parseRegistryDocument } from '../src/registry/document.js';
import { shutdownBudgetMs } from '../src/server.js';
import { hubModelId } from '../src/encoders/hub/model-id.js';
import { startStandInHub } from './fakes/hub.js';
import { startGateway } from './helpers/gateway.js';
import { exportRepo } from './helpers/hub-model.js';
import { kustomize, kustomizeWith, overlayRoot, type K8sObject } from './helpers/kustomize.js';
import { PROMETHEUS_RULE_FILE, prometheusRuleYaml, RULES_FILE } from './helpers/monitoring.js';

const ROOT = new URL('..', import.meta.url).pathname;
const VLLM_LORA_RANKS = [8, 16, 32, 64, 128, 256, 320, 512];

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } };
}

const flag = (args: string[], name: string): string | undefined => {
  const inline = args.find((arg) => arg.startsWith(`${name}=`));
  if (inline) return inline.slice(name.length + 1);
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const flags = (args: string[], name: string): string[] => args.flatMap((arg, i) => (arg.startsWith(`${name}=`) ? [arg.slice(name.length + 1)] : arg === name ? [args[i + 1]] : []));
/** The values after a flag that takes several (vLLM's --lora-modules a=… b=…). */
const listFlag = (args: string[], name: string): string[] => {
  const at = args.indexOf(name);
  if (at < 0) return [];
  const values: string[] = [];
  for (let i = at + 1; i < args.length && !args[i].startsWith('--'); i++) values.push(args[i]);
  return values;
};
const stem = (path: string) => path.split('/').pop()!.replace(/\.[^.]+$/, '');
const pinned = (image: string) => /:[\w.-]+$/.test(image) && !image.endsWith(':latest');

async function probePathsAnswer(t: Tap, paths: string[]) {
  const gw = await startGateway();
  t.teardown(() => gw.close());
  for (const path of paths) t.equal((await gw.app.inject({ url: path })).statusCode, 200, `${path} answers 200 in the app`);
}

/** Checks shared by every upstream kind: config names and values, registry, adapters mounted where the registry says. */
function checkGatewayConfig(t: Tap, env: Record<string, string>, readFile: (path: string) => string | undefined) {
  for (const name of Object.keys(env)) t.ok(name in ENVIRONMENT, `${name} is a setting the gateway reads`);
  const config = loadConfig({ env });
  t.ok(config, 'the environment is a valid configuration');
  const source = readFile(config.tasks!);
  t.ok(source, `the registry ${config.tasks} is mounted`);
  const registry = parseRegistryDocument(source!, config.tasks!);
  return { config, registry };
}

for (const overlay of ['vllm', 'llamacpp']) {
  t.test(`kubernetes overlay ${overlay}: valid objects, wired together`, async (t) => {
    const objects = kustomize(overlayRoot(overlay));
    for (const object of objects) {
      const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
      const model = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`);
      t.doesNotThrow(() => new model[object.kind](object).validate(), `${object.kind}/${object.metadata.name} validates against the Kubernetes schema`);
    }
    const keys = objects.map((object) => `${object.kind}/${object.metadata.name}`);
    t.equal(new Set(keys).size, keys.length, 'no object twice');
    const find = (kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name);

    const deployment = find('Deployment', 'lorauter')!;
    t.ok(deployment, 'the gateway Deployment');
    const pod = deployment.spec.template.spec;
    const gateway = pod.containers.find((container: any) => container.name === 'lorauter');
    const upstream = pod.containers.find((container: any) => container.name !== 'lorauter');
    t.ok(gateway && upstream, 'a pod with the upstream and the gateway as a sidecar');
    const secret = find('Secret', 'lorauter-secrets')!;
    const env: Record<string, string> = {};
    for (const variable of gateway.env as EnvVar[]) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref) {
        t.ok(find('Secret', ref.name)?.stringData?.[ref.key] !== undefined || ref.optional, `secret ${ref.name}/${ref.key} exists`);
        env[variable.name] = find('Secret', ref.name)?.stringData?.[ref.key] ?? '';
      } else env[variable.name] = variable.value!;
    }
    for (const variable of upstream.env as EnvVar[]) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref) t.ok(secret.stringData[ref.key] !== undefined || ref.optional, `upstream secret ${ref.key} exists`);
    }

    // Volumes: every mount names a pod volume; every claim, config map and secret exists.
    const volumes = new Map<string, any>(pod.volumes.map((volume: any) => [volume.name, volume]));
    for (const container of pod.containers) {
      for (const mount of container.volumeMounts ?? []) t.ok(volumes.has(mount.name), `${container.name}: volume ${mount.name} exists`);
      t.ok(pinned(container.image), `${container.name}: image ${container.image} is pinned`);
    }
    for (const volume of volumes.values()) {
      if (volume.persistentVolumeClaim) t.ok(find('PersistentVolumeClaim', volume.persistentVolumeClaim.claimName), `claim ${volume.persistentVolumeClaim.claimName} exists`);
      if (volume.configMap) t.ok(find('ConfigMap', volume.configMap.name), `config map ${volume.configMap.name} exists`);
    }
    const mountOf = (container: any, path: string) =>
      (container.volumeMounts as any[]).filter((mount) => path === mount.mountPath || path.startsWith(`${mount.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
    const readFile = (path: string) => {
      const mount = mountOf(gateway, path);
      const configMap = mount && volumes.get(mount.name)?.configMap && find('ConfigMap', volumes.get(mount.name).configMap.name);
      return configMap?.data?.[path.slice(mount.mountPath.length + 1)];
    };
    const { config, registry } = checkGatewayConfig(t, env, readFile);

    // Ports: the gateway listens on PORT, the Service reaches only that port, the gateway reaches the upstream on localhost.
    const http = gateway.ports.find((port: any) => port.name === 'http');
    t.equal(http.containerPort, config.port, 'the gateway container port is PORT');
    const service = find('Service', 'lorauter')!;
    t.equal(service.spec.ports.length, 1, 'the Service exposes one port');
    t.equal(service.spec.ports[0].targetPort, 'http', "the Service targets the gateway's port");
    t.same(service.spec.selector, deployment.spec.template.metadata.labels, 'the Service selects the pod');
    const upstreamUrl = new URL(config.upstream.url!);
    t.ok(['127.0.0.1', 'localhost'].includes(upstreamUrl.hostname), 'the sidecar reaches the upstream on localhost');
    const upstreamPort = upstream.ports[0].containerPort;
    t.equal(Number(upstreamUrl.port), upstreamPort, 'LORAUTER_UPSTREAM_URL names the upstream container port');
    t.equal(Number(flag(upstream.args, '--port')), upstreamPort, 'the upstream listens where its container port says');
    const redis = new URL(config.cache.redisUrl!);
    const redisService = find('Service', redis.hostname);
    t.ok(redisService, 'REDIS_URL names a Service');
    t.equal(redisService!.spec.ports[0].port, Number(redis.port));

    // Probes and shutdown.
    t.equal(gateway.readinessProbe.httpGet.path, '/readyz');
    t.equal(gateway.livenessProbe.httpGet.path, '/healthz');
    t.equal(gateway.readinessProbe.httpGet.port, 'http');
    t.ok(upstream.readinessProbe, "the upstream's readiness gates the pod's, so the gateway is not ready before it");
    const host = flag(upstream.args, '--host');
    t.notOk(host && ['127.0.0.1', 'localhost'].includes(host), "the upstream listens where the kubelet's probes reach it (the pod IP)");
    await probePathsAnswer(t, [gateway.readinessProbe.httpGet.path, gateway.livenessProbe.httpGet.path]);
    t.ok(pod.terminationGracePeriodSeconds * 1000 > shutdownBudgetMs(config), "the grace period is longer than the gateway's drain and grace");
    if (gateway.securityContext?.runAsNonRoot) t.ok(Number.isInteger(gateway.securityContext.runAsUser), 'runAsNonRoot with a numeric user the kubelet can check');

    // Adapters: where the registry says, on a volume both containers mount at the same path.
    for (const adapter of registry.adapters.values()) {
      if (!adapter.path) continue;
      const mine = mountOf(gateway, adapter.path);
      const theirs = mountOf(upstream, adapter.path);
      t.ok(mine && theirs && mine.name === theirs.name && mine.mountPath === theirs.mountPath, `${adapter.id}: ${adapter.path} is on one volume at one path in both containers`);
    }
    if (overlay === 'vllm') {
      t.ok(upstream.args.includes('--enable-lora'));
      const rank = Number(flag(upstream.args, '--max-lora-rank'));
      t.ok(VLLM_LORA_RANKS.includes(rank), `--max-lora-rank ${rank} is one vLLM accepts`);
      t.ok(config.upstream.maxLoraRank <= rank, 'the gateway never merges above what vLLM takes');
      t.equal((upstream.env as EnvVar[]).find((variable) => variable.name === 'VLLM_ALLOW_RUNTIME_LORA_UPDATING')?.value, 'True', 'runtime LoRA loading on');
      const modules = new Map(listFlag(upstream.args, '--lora-modules').map((entry) => entry.split('=') as [string, string]));
      for (const adapter of registry.adapters.values()) t.equal(modules.get(adapter.upstreamName ?? adapter.id), adapter.path, `vLLM serves ${adapter.id} from the registry's path`);
      const mergeDir = config.upstream.mergeDir!;
      const mine = mountOf(gateway, mergeDir);
      const theirs = mountOf(upstream, mergeDir);
      t.ok(mine && theirs && mine.name === theirs.name && mine.mountPath === theirs.mountPath, 'the merge folder is one volume at one path in both containers');
      t.notOk(mine.readOnly, 'the gateway can write merges');
      const volume = (pod.volumes as { name: string; emptyDir?: { sizeLimit?: string } }[]).find((entry) => entry.name === mine.name);
      if (volume?.emptyDir) {
        const limit = kubernetesBytes(volume.emptyDir.sizeLimit ?? '');
        t.ok(limit >= config.upstream.mergeDirMaxBytes + MERGE_BUILD_HEADROOM, `the merge volume (${volume.emptyDir.sizeLimit}) holds LORAUTER_MERGE_DIR_MAX_BYTES (${config.upstream.mergeDirMaxBytes}) and a build beside it: the kubelet evicts a pod whose emptyDir passes its limit`);
      }
    } else {
      t.ok(upstream.args.includes('--lora-init-without-apply'), 'adapters loaded at scale 0 until a request sets them');
      const stems = flags(upstream.args, '--lora').map(stem);
      for (const adapter of registry.adapters.values()) t.ok(stems.includes(adapter.llamaCppName ?? adapter.id), `llama.cpp loads ${adapter.id}`);
      for (const path of flags(upstream.args, '--lora')) t.ok(mountOf(upstream, path), `${path} is on a mounted volume`);
    }
  });
}

for (const overlay of ['vllm', 'llamacpp']) {
  t.test(`kubernetes overlay ${overlay} with the monitoring component: a ServiceMonitor that scrapes the gateway, the alerting rules`, async (t) => {
    const plain = kustomize(overlayRoot(overlay));
    const objects = kustomizeWith(overlay, ['monitoring']);
    const added = objects.filter((object) => !plain.some((other) => other.kind === object.kind && other.metadata.name === object.metadata.name));
    t.same(added.map((object) => object.kind).sort(), ['PrometheusRule', 'ServiceMonitor'], 'the component adds these two, and changes nothing else');
    t.same(objects.filter((object) => !added.includes(object)), plain);
    const service = objects.find((object) => object.kind === 'Service' && object.metadata.name === 'lorauter')!;
    const monitor = added.find((object) => object.kind === 'ServiceMonitor')!;
    t.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) t.equal(service.metadata.labels?.[key], value, `the ServiceMonitor selects the gateway's Service (${key})`);
    const [endpoint] = monitor.spec.endpoints;
    t.ok(service.spec.ports.some((port: { name: string }) => port.name === endpoint.port), `it scrapes the Service's ${endpoint.port} port`);
    await probePathsAnswer(t, [endpoint.path]);
    const gateway = objects.find((object) => object.kind === 'Deployment' && object.metadata.name === 'lorauter')!.spec.template.spec.containers.find((container: { name: string }) => container.name === 'lorauter');
    const metricsKey = (gateway.env as EnvVar[]).find((variable) => variable.name === 'LORAUTER_METRICS_API_KEY')?.valueFrom?.secretKeyRef;
    const credentials = endpoint.authorization.credentials;
    t.same({ name: credentials.name, key: credentials.key }, { name: metricsKey?.name, key: metricsKey?.key }, 'it sends the key the gateway asks for on /metrics, from the same Secret');
    t.ok(credentials.optional && metricsKey?.optional, 'both optional: without the key /metrics is open and the scrape sends none');
    // Alerts select job="lorauter": the job a ServiceMonitor gives is its Service's name.
    const rule = added.find((object) => object.kind === 'PrometheusRule')!;
    t.same(rule.spec.groups, YAML.parse(readFileSync(RULES_FILE, 'utf8')).groups, 'the PrometheusRule holds the rules file');
    const expressions = rule.spec.groups.flatMap((group: { rules: { expr: string }[] }) => group.rules.map((item) => item.expr));
    t.ok(expressions.some((expr: string) => expr.includes(`job="${service.metadata.name}"`)), `the rules select job="${service.metadata.name}"`);
  });
}

for (const overlay of ['vllm', 'llamacpp']) {
  t.test(`kubernetes overlay ${overlay} with the hub-encoder component: an init container pulls the model the gateway then loads offline`, async (t) => {
    const plain = kustomize(overlayRoot(overlay));
    const objects = kustomizeWith(overlay, ['hub-encoder']);
    const deployment = objects.find((object) => object.kind === 'Deployment' && object.metadata.name === 'lorauter')!.spec.template.spec;
    const gateway = deployment.containers.find((container: { name: string }) => container.name === 'lorauter');
    const [pull] = deployment.initContainers;
    t.equal(pull.image, gateway.image, 'the gateway image pulls');
    t.same(pull.args, ['models', 'pull'], 'lorauter models pull (of LORAUTER_ENCODER_MODEL)');
    const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === pull.envFrom[0].configMapRef.name)!;
    t.same(gateway.envFrom, pull.envFrom, 'both read the model and the cache from one ConfigMap');
    const settings = configMap.data as Record<string, string>;
    const environment = (container: { env: EnvVar[] }) => ({ ...settings, ...Object.fromEntries(container.env.filter((v) => v.value !== undefined).map((v) => [v.name, v.value!])) });
    const pulling = loadConfig({ env: environment(pull) });
    const serving = loadConfig({ env: environment(gateway) });
    t.equal(pulling.encoder.hub.offline, false, 'the init container may reach the hub');
    t.equal(serving.encoder.hub.offline, true, 'the gateway starts offline, from what was pulled');
    t.equal(serving.encoder.kind, 'onnx');
    t.equal(serving.encoder.model, pulling.encoder.model);
    t.ok(hubModelId(serving.encoder.model!), `${serving.encoder.model} is a hub id`);
    const mountOfCache = (container: { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }) => container.volumeMounts.find((mount) => mount.mountPath === serving.encoder.hub.cacheDir);
    t.ok(mountOfCache(pull) && !mountOfCache(pull)!.readOnly, 'the init container writes the cache');
    t.equal(mountOfCache(gateway)?.name, mountOfCache(pull)?.name, 'on the volume the gateway reads');
    t.ok(deployment.volumes.some((volume: { name: string }) => volume.name === mountOfCache(pull)!.name));
    const token = (pull.env as EnvVar[]).find((v) => v.name === 'HF_TOKEN')?.valueFrom?.secretKeyRef;
    t.match(token, { name: 'lorauter-secrets', optional: true }, 'a gated model\'s token from the Secret, when there');
    t.equal(pull.securityContext.runAsNonRoot, true);
    t.same(objects.filter((object) => object.kind !== 'Deployment' && object !== configMap), plain.filter((object) => object.kind !== 'Deployment'), 'nothing else changes');
  });
}

t.test('Dockerfile: ENCODER_MODEL as a hub id is pulled at build time, as a build-context folder is copied', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  // The RUN step's shell, as the build runs it, with `lorauter` from source and the image's hub cache in a temporary folder.
  const step = /^RUN --mount=type=secret,id=hf_token,env=HF_TOKEN \\\n\s+(if .*; fi)/m.exec(dockerfile)?.[1];
  t.ok(step, 'the pull step');
  t.match(dockerfile, /^ENV HF_HOME=\/models\/hf .*LORAUTER_ENCODER_MODEL=\$\{ENCODER_MODEL\}/m);
  t.ok(dockerfile.indexOf('ENV HF_HUB_OFFLINE=1') > dockerfile.indexOf(step!), 'offline after the pull');
  const hub = await startStandInHub();
  t.teardown(() => hub.stop());
  const commit = hub.push('lorauter-test/minilm-tiny', exportRepo());
  const home = t.testdir({});
  const shell = step!.replace('node bin/lorauter.js', `${process.execPath} --import tsx ${join(ROOT, 'src/cli/entry.ts')}`);
  // Not execFileSync: the stand-in hub answers from this process's event loop.
  const build = async (model: string) => (await promisify(execFile)('sh', ['-c', shell], { cwd: ROOT, env: { ...process.env, ENCODER_MODEL: model, HF_HOME: home, HF_ENDPOINT: hub.url, LOG_LEVEL: 'warn' }, encoding: 'utf8' })).stdout;
  t.match(await build('lorauter-test/minilm-tiny'), new RegExp(`commit ${commit}`), 'an id is pulled');
  t.ok(existsSync(join(home, 'hub', 'models--lorauter-test--minilm-tiny', 'snapshots', commit, 'onnx', 'model.onnx')), 'into HF_HOME/hub');
  const requests = hub.requests.length;
  t.equal(await build('docker/models/none'), '', 'a folder in the context is not pulled');
  t.equal(await build(''), '', 'nor is anything without a model');
  t.equal(hub.requests.length, requests);
});

t.test('the PrometheusRule is generated from the rules file (npm run monitoring)', async (t) => {
  t.equal(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'), prometheusRuleYaml(), 'not stale');
});

t.test('calibration Job: an Indexed Job a shard a pod, on one results volume, and the merge Job after it', async (t) => {
  const { buildCli } = await import('../src/cli/main.js');
  const calibrate = buildCli().commands.find((command) => command.name() === 'calibrate')!;
  const flagsOfCalibrate = new Set(calibrate.options.map((option) => option.long));
  const root = join(ROOT, 'deploy', 'k8s', 'jobs', 'calibrate');
  const objects = kustomize(root);
  const merge = kustomize(join(root, 'merge'));
  for (const object of [...objects, ...merge]) {
    const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
    const model = await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`);
    t.doesNotThrow(() => new model[object.kind](object).validate(), `${object.kind}/${object.metadata.name} validates against the Kubernetes schema`);
  }
  const job = objects.find((object) => object.kind === 'Job')!;
  const mergeJob = merge.find((object) => object.kind === 'Job')!;
  t.equal(job.spec.completionMode, 'Indexed');
  const shards = job.spec.completions;
  t.equal(job.spec.parallelism, shards, 'every shard at once');
  const [container] = job.spec.template.spec.containers;
  const [mergeContainer] = mergeJob.spec.template.spec.containers;
  t.equal(flag(container.args, '--shard'), `$(JOB_COMPLETION_INDEX)/${shards}`, 'the shard is the pod\'s completion index, of `completions`');
  for (const args of [container.args, mergeContainer.args]) {
    t.equal(args[0], 'calibrate');
    for (const arg of args.filter((value: string) => value.startsWith('--'))) t.ok(flagsOfCalibrate.has(arg), `${arg} is a flag of lorauter calibrate`);
  }
  t.ok(mergeContainer.args.includes('--merge') && !mergeContainer.args.includes('--shard'), 'the follow-up Job merges');
  t.equal(flag(mergeContainer.args, '--out'), flag(container.args, '--out'), 'the merge reads the results the shards wrote beside --out');
  t.equal(flag(mergeContainer.args, '--tasks'), flag(container.args, '--tasks'));
  for (const variable of container.env as EnvVar[]) t.ok(variable.name in ENVIRONMENT, `${variable.name} is a setting`);
  t.equal(container.image, mergeContainer.image);
  t.ok(pinned(container.image), 'the image is pinned');
  // Both Jobs mount the same results claim (one all pods write) and the tasks config map, where the args say.
  const mounted = (spec: any, container: any, path: string) => {
    const mount = (container.volumeMounts as any[]).find((entry) => path.startsWith(`${entry.mountPath}/`));
    return mount && (spec.volumes as any[]).find((volume) => volume.name === mount.name);
  };
  const results = mounted(job.spec.template.spec, container, flag(container.args, '--out')!);
  t.equal(mounted(mergeJob.spec.template.spec, mergeContainer, flag(mergeContainer.args, '--out')!)?.persistentVolumeClaim?.claimName, results?.persistentVolumeClaim?.claimName, 'one results volume');
  const claim = objects.find((object) => object.kind === 'PersistentVolumeClaim' && object.metadata.name === results?.persistentVolumeClaim?.claimName);
  t.ok(claim?.spec.accessModes.includes('ReadWriteMany'), 'a claim every shard pod can write at once');
  const tasksVolume = mounted(job.spec.template.spec, container, flag(container.args, '--tasks')!);
  const configMap = objects.find((object) => object.kind === 'ConfigMap' && object.metadata.name === tasksVolume?.configMap?.name);
  const registry = parseRegistryDocument(configMap!.data['tasks.yaml'], 'tasks.yaml');
  t.ok(registry.tasks.length >= shards && registry.tasks.every((task) => task.targets?.every((target) => typeof target === 'string')), 'the sample tasks have targets, at least one a shard');
  t.ok(job.spec.template.spec.restartPolicy === 'Never' && job.spec.backoffLimitPerIndex > 0, 'a failed shard pod is started again for its index (and resumes)');
});

t.test('docker compose: each profile wires a gateway to its upstream and Redis', async (t) => {
  const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
  const hostPath = (volume: string) => {
    const [host, container, mode] = volume.split(':');
    return { host: join(ROOT, host), container, readOnly: mode === 'ro' };
  };
  for (const profile of ['llamacpp', 'vllm']) {
    const active = Object.entries(compose.services as Record<string, any>).filter(([, service]) => !service.profiles || service.profiles.includes(profile));
    const services = new Map(active);
    const gateways = active.filter(([name]) => name.startsWith('gateway'));
    t.equal(gateways.length, 1, `${profile}: one gateway`);
    const [, gateway] = gateways[0];
    const env = Object.fromEntries(Object.entries(gateway.environment as Record<string, string>).map(([name, value]) => [name, String(value).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));
    const mounts = (gateway.volumes as string[]).map(hostPath);
    const readFile = (path: string) => {
      const mount = mounts.find((m) => path.startsWith(`${m.container}/`));
      const file = mount && join(mount.host, path.slice(mount.container.length + 1));
      return file && existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    };
    const { config, registry } = checkGatewayConfig(t, env, readFile);
    t.ok((gateway.ports as string[]).some((port) => port.endsWith(`:${config.port}`)), `${profile}: the published port is PORT`);
    const upstreamUrl = new URL(config.upstream.url!);
    const upstream = services.get(upstreamUrl.hostname);
    t.ok(upstream, `${profile}: LORAUTER_UPSTREAM_URL names the ${upstreamUrl.hostname} service`);
    t.equal(Number(flag(upstream.command, '--port')), Number(upstreamUrl.port), 'on the port it listens on');
    t.equal(config.upstream.kind, profile);
    t.ok(services.get(new URL(config.cache.redisUrl!).hostname), 'REDIS_URL names the redis service');
    for (const dependency of Object.keys(gateway.depends_on)) t.ok(services.get(dependency)?.healthcheck, `${dependency} exists and has a health check to wait on`);
    for (const [name, service] of active) if (!service.build) t.ok(pinned(service.image), `${name}: image ${service.image} is pinned`);
    const upstreamMounts = (upstream.volumes as string[]).map(hostPath);
    for (const adapter of registry.adapters.values()) {
      const mine = mounts.find((m) => adapter.path!.startsWith(`${m.container}/`));
      const theirs = upstreamMounts.find((m) => adapter.path!.startsWith(`${m.container}/`));
      t.ok(mine && theirs && mine.host === theirs.host && mine.container === theirs.container, `${profile}: ${adapter.id} is the same folder at the same path for both`);
    }
    if (profile === 'vllm') {
      const mergeDir = config.upstream.mergeDir!;
      const mine = mounts.find((m) => m.container === mergeDir);
      const theirs = upstreamMounts.find((m) => m.container === mergeDir);
      t.ok(mine && theirs && mine.host === theirs.host && !mine.readOnly, 'the merge folder is shared, writable by the gateway');
      const rank = Number(flag(upstream.command, '--max-lora-rank'));
      t.ok(VLLM_LORA_RANKS.includes(rank) && config.upstream.maxLoraRank <= rank);
      t.equal(upstream.environment.VLLM_ALLOW_RUNTIME_LORA_UPDATING, 'True');
    } else {
      t.ok(upstream.command.includes('--lora-init-without-apply'));
      const stems = flags(upstream.command, '--lora').map(stem);
      for (const adapter of registry.adapters.values()) t.ok(stems.includes(adapter.llamaCppName ?? adapter.id), `llama.cpp loads ${adapter.id}`);
    }
  }
});

t.test('Dockerfile: Node 22, compiled addon, non-root, an encoder model by build argument', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  t.match(dockerfile, /^FROM node:22-bookworm-slim AS build$/m);
  t.match(dockerfile, /^FROM node:22-bookworm-slim$/m);
  t.match(dockerfile, /^USER node$/m);
  t.match(dockerfile, /^ARG ENCODER_MODEL=/m);
  t.match(dockerfile, /^ENTRYPOINT \["node", "bin\/lorauter.js"\]$/m, 'exec form: node gets the signals and drains');
  t.ok(existsSync(join(ROOT, 'docker/models/none')), 'the placeholder model folder exists');
});

// A build in progress beside a full merge folder: three 80 MB adapters of a 7B model.
const MERGE_BUILD_HEADROOM = 240e6;

/** A Kubernetes quantity (`20Gi`, `500M`, `1e9`) in bytes; NaN when it is not one. */
function kubernetesBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?(?:e\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!match) return NaN;
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * (match[2] ? units[match[2]] : 1);
}
