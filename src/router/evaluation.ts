import { EmbeddingCache } from '../cache/embedding-cache.js';
import type { Encoder } from '../encoders/encoder.js';
import { GatewayMetrics } from '../observability/metrics.js';
import type { TaskDefinition, TaskRegistry } from '../registry/types.js';
import { Router } from './router.js';

export interface EvaluationOptions {
  folds: number;
  excludeOwn: boolean;
  topK: number;
  temperature: number;
  fitEncoder: (tasks: TaskDefinition[]) => Encoder;
  onFold?: (fold: number, folds: number) => void;
}

export interface EvaluationReport {
  folds: number;
  tasks: number;
  prompts: number;
  top1: number;
  top3: number;
  domain: number;
  /** Out-of-domain protocol: the prompt's own task and adapter excluded; top-1 task in the right domain. */
  outOfDomain?: { domainTop1: number; domainTop3: number };
}

/**
 * k-fold split of each task's examples: fold f tests on examples i with i % folds === f and
 * builds the registry (and fits the encoder) from the rest. Scores averaged over folds.
 */
export async function evaluateRouting(registry: TaskRegistry, options: EvaluationOptions): Promise<EvaluationReport> {
  if (options.folds < 2) throw new RangeError('folds must be at least 2');
  const tooSmall = registry.tasks.filter((task) => task.examples.length < options.folds);
  if (tooSmall.length > 0) throw new RangeError(`task "${tooSmall[0].id}" has fewer examples than folds`);
  const domainOf = new Map(registry.tasks.map((task) => [task.id, task.domain]));
  let prompts = 0;
  let top1 = 0;
  let top3 = 0;
  let domain = 0;
  let oodTop1 = 0;
  let oodTop3 = 0;
  for (let fold = 0; fold < options.folds; fold++) {
    options.onFold?.(fold, options.folds);
    const validation = registry.tasks.map((task) => ({ ...task, examples: task.examples.filter((_, i) => i % options.folds !== fold) }));
    const encoder = options.fitEncoder(validation);
    const router = await Router.build({ ...registry, tasks: validation }, encoder, new EmbeddingCache(0, new GatewayMetrics()), {
      topK: Math.max(3, options.topK),
      temperature: options.temperature,
    });
    for (const task of registry.tasks) {
      const tests = task.examples.filter((_, i) => i % options.folds === fold);
      const decisions = await router.routeMany(tests, { topK: 3 });
      for (const decision of decisions) {
        prompts++;
        const ids = decision.tasks.map((t) => t.id);
        if (ids[0] === task.id) top1++;
        if (ids.slice(0, 3).includes(task.id)) top3++;
        if (domainOf.get(ids[0]) === task.domain) domain++;
      }
      if (options.excludeOwn) {
        const excluded = await router.routeMany(tests, { topK: 3, excludeTasks: [task.id] });
        for (const decision of excluded) {
          const domains = decision.tasks.map((t) => domainOf.get(t.id));
          if (domains[0] === task.domain) oodTop1++;
          if (domains.includes(task.domain)) oodTop3++;
        }
      }
    }
  }
  return {
    folds: options.folds,
    tasks: registry.tasks.length,
    prompts,
    top1: top1 / prompts,
    top3: top3 / prompts,
    domain: domain / prompts,
    ...(options.excludeOwn ? { outOfDomain: { domainTop1: oodTop1 / prompts, domainTop3: oodTop3 / prompts } } : {}),
  };
}
