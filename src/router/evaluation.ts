import { CachingEncoder } from '../cache/caching-encoder.js';
import type { PreparedEncoder } from '../encoders/kinds.js';
import { exampleGroups } from '../registry/base-examples.js';
import type { TaskRegistry } from '../registry/types.js';
import { offTopicPrompts } from './off-topic-prompts.js';
import { boundedText, Router, type RouteDecision } from './router.js';

export interface EvaluationOptions {
  folds: number;
  excludeOwn: boolean;
  topK: number;
  temperature: number;
  encoder: PreparedEncoder;
  /** The abstention threshold reported on (the sweep covers others). */
  minConfidence: number;
  baseMargin: number;
  /** Prompts are routed on their first and last halves of this many characters, as the gateway does. */
  maxRoutedChars?: number;
  onFold?: (fold: number, folds: number) => void;
}

export interface TaskScore {
  task: string;
  domain?: string;
  prompts: number;
  top1: number;
  top3: number;
}

export interface ConfusedPair {
  task: string;
  routedTo: string;
  /** Share of the task's test prompts whose top-1 task was `routedTo`. */
  share: number;
}

export interface AbstentionPoint {
  threshold: number;
  inDomain: number;
  outOfDomain?: number;
  offTopic: number;
}

export const SWEEP_THRESHOLDS = [0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5];

/** Per decision, what abstention depends on: its confidence, and whether a base example was closer than every task. */
interface AbstentionSample {
  confidence: number;
  baseCloser: boolean;
}

const sampleOf = (decision: RouteDecision): AbstentionSample => ({ confidence: decision.confidence, baseCloser: decision.abstainReason === 'base_example' });
const abstains = (sample: AbstentionSample, threshold: number) => sample.baseCloser || sample.confidence < threshold;
const shareAbstaining = (samples: AbstentionSample[], threshold: number) => samples.filter((sample) => abstains(sample, threshold)).length / Math.max(1, samples.length);

export interface EvaluationReport {
  encoder: string;
  folds: number;
  tasks: number;
  prompts: number;
  top1: number;
  top3: number;
  domain: number;
  /** Out-of-domain protocol: the prompt's own task and adapter excluded; top-1 task in the right domain. */
  outOfDomain?: { domainTop1: number; domainTop3: number };
  /** Mean time to encode one test prompt (no cache), batches of one task's test prompts. */
  msPerPrompt: number;
  perTask: TaskScore[];
  /** Shares of prompts that abstain at `minConfidence`: in-domain test prompts (false abstention), OOD, off-topic. */
  abstention: AbstentionPoint;
  /** The same shares over a range of thresholds. */
  sweep: AbstentionPoint[];
  /** The most frequent wrong top-1 tasks, worst first. */
  confused: ConfusedPair[];
}

/**
 * k-fold split of each task's examples: fold f tests on examples i with i % folds === f and
 * builds the registry (and fits the encoder, when it is fitted) from the rest. Scores averaged over folds.
 */
export async function evaluateRouting(registry: TaskRegistry, options: EvaluationOptions): Promise<EvaluationReport> {
  if (options.folds < 2) throw new RangeError('folds must be at least 2');
  const tooSmall = registry.tasks.filter((task) => task.examples.length < options.folds);
  if (tooSmall.length > 0) throw new RangeError(`task "${tooSmall[0].id}" has fewer examples than folds`);
  const domainOf = new Map(registry.tasks.map((task) => [task.id, task.domain]));
  const perTask = new Map(registry.tasks.map((task) => [task.id, { task: task.id, domain: task.domain, prompts: 0, top1: 0, top3: 0 }]));
  const confusions = new Map<string, number>();
  let prompts = 0;
  let domain = 0;
  let oodTop1 = 0;
  let oodTop3 = 0;
  let encodeMs = 0;
  let fingerprint = '';
  const samples = { inDomain: [] as AbstentionSample[], outOfDomain: [] as AbstentionSample[], offTopic: [] as AbstentionSample[] };
  const offTopic = offTopicPrompts();
  for (let fold = 0; fold < options.folds; fold++) {
    options.onFold?.(fold, options.folds);
    const validation = registry.tasks.map((task) => ({ ...task, examples: task.examples.filter((_, i) => i % options.folds !== fold) }));
    const encoderFor = (tasks: readonly { examples: readonly string[] }[]) => options.encoder.forTasks(exampleGroups(tasks, registry.baseExamples));
    const encoder = encoderFor(validation);
    fingerprint = encoder.fingerprint;
    // Abstention is judged on the samples below at every threshold; the router itself never abstains on confidence.
    const router = await Router.build({ ...registry, tasks: validation }, new CachingEncoder(encoder, { maxEntries: 0 }), {
      topK: Math.max(3, options.topK),
      temperature: options.temperature,
      minConfidence: 0,
      baseMargin: options.baseMargin,
      maxRoutedChars: options.maxRoutedChars,
    }, encoderFor);
    for (const decision of await router.routeMany(offTopic, { topK: 3 })) samples.offTopic.push(sampleOf(decision));
    for (const task of registry.tasks) {
      const tests = task.examples.filter((_, i) => i % options.folds === fold);
      const started = performance.now();
      await encoder.encode(options.maxRoutedChars ? tests.map((test) => boundedText(test, options.maxRoutedChars!)) : tests);
      encodeMs += performance.now() - started;
      const decisions = await router.routeMany(tests, { topK: 3 });
      const score = perTask.get(task.id)!;
      for (const decision of decisions) {
        prompts++;
        samples.inDomain.push(sampleOf(decision));
        score.prompts++;
        const ids = decision.tasks.map((t) => t.id);
        if (ids[0] === task.id) score.top1++;
        else confusions.set(`${task.id}\u0000${ids[0]}`, (confusions.get(`${task.id}\u0000${ids[0]}`) ?? 0) + 1);
        if (ids.slice(0, 3).includes(task.id)) score.top3++;
        if (domainOf.get(ids[0]) === task.domain) domain++;
      }
      if (options.excludeOwn) {
        const excluded = await router.routeMany(tests, { topK: 3, excludeTasks: [task.id] });
        for (const decision of excluded) {
          samples.outOfDomain.push(sampleOf(decision));
          const domains = decision.tasks.map((t) => domainOf.get(t.id));
          if (domains[0] === task.domain) oodTop1++;
          if (domains.includes(task.domain)) oodTop3++;
        }
      }
    }
  }
  const tasks = [...perTask.values()];
  const pointAt = (threshold: number): AbstentionPoint => ({
    threshold,
    inDomain: shareAbstaining(samples.inDomain, threshold),
    ...(options.excludeOwn ? { outOfDomain: shareAbstaining(samples.outOfDomain, threshold) } : {}),
    offTopic: shareAbstaining(samples.offTopic, threshold),
  });
  const sum = (pick: (score: TaskScore) => number) => tasks.reduce((total, score) => total + pick(score), 0);
  return {
    encoder: fingerprint,
    folds: options.folds,
    tasks: registry.tasks.length,
    prompts,
    top1: sum((score) => score.top1) / prompts,
    top3: sum((score) => score.top3) / prompts,
    domain: domain / prompts,
    ...(options.excludeOwn ? { outOfDomain: { domainTop1: oodTop1 / prompts, domainTop3: oodTop3 / prompts } } : {}),
    msPerPrompt: encodeMs / prompts,
    abstention: pointAt(options.minConfidence),
    sweep: [...new Set([...SWEEP_THRESHOLDS, options.minConfidence])].sort((a, b) => a - b).map(pointAt),
    perTask: tasks.map((score) => ({ ...score, top1: score.top1 / score.prompts, top3: score.top3 / score.prompts })),
    confused: [...confusions]
      .map(([key, count]) => {
        const [task, routedTo] = key.split('\u0000');
        return { task, routedTo, share: count / perTask.get(task)!.prompts };
      })
      .sort((a, b) => b.share - a.share || a.task.localeCompare(b.task))
      .slice(0, 10),
  };
}
