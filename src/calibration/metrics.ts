import { l as rougeL, nGram, treeBankTokenize } from 'js-rouge';

// js-rouge's nGram refuses n larger than the text; a short answer simply has no such n-grams.
const gramsOf = (tokens: string[], n: number) => (tokens.length < n ? [] : nGram(tokens, n));
import type { TaskDefinition, TaskMetric } from '../registry/types.js';

/** SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .normalize('NFKC')
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function exactMatch(answer: string, target: string): number {
  return normalizeAnswer(answer) === normalizeAnswer(target) ? 1 : 0;
}

/** ROUGE-L F1 on lower-cased tokens (js-rouge). */
export function rougeLScore(answer: string, target: string): number {
  const [a, b] = [normalizeAnswer(answer), normalizeAnswer(target)];
  if (a === '' || b === '') return a === b ? 1 : 0;
  return rougeL(answer, target, { caseSensitive: false });
}

/**
 * Sentence BLEU-4 with add-one smoothing of the higher n-gram precisions (Lin & Och 2004, as in
 * sacrebleu's "add-k" and NLTK's method 2), tokenised like js-rouge. No maintained npm package
 * computes BLEU; the formula is short and tested against hand-computed values.
 */
export function bleuScore(answer: string, target: string, maxN = 4): number {
  const candidate = treeBankTokenize(answer.toLowerCase());
  const reference = treeBankTokenize(target.toLowerCase());
  if (candidate.length === 0 || reference.length === 0) return candidate.length === reference.length ? 1 : 0;
  let logPrecision = 0;
  for (let n = 1; n <= maxN; n++) {
    const counts = new Map<string, number>();
    for (const gram of gramsOf(reference, n)) counts.set(gram, (counts.get(gram) ?? 0) + 1);
    const grams = gramsOf(candidate, n);
    let matched = 0;
    for (const gram of grams) {
      const left = counts.get(gram) ?? 0;
      if (left > 0) {
        matched++;
        counts.set(gram, left - 1);
      }
    }
    const smoothing = n === 1 ? 0 : 1;
    const precision = (matched + smoothing) / (grams.length + smoothing);
    if (precision === 0) return 0;
    logPrecision += Math.log(precision) / maxN;
  }
  const brevity = candidate.length >= reference.length ? 1 : Math.exp(1 - reference.length / candidate.length);
  return brevity * Math.exp(logPrecision);
}

const SCORERS: Record<TaskMetric, (answer: string, target: string) => number> = { exact: exactMatch, rouge_l: rougeLScore, bleu: bleuScore };

export function scoreAnswer(metric: TaskMetric, answer: string, target: string): number {
  return SCORERS[metric](answer, target);
}

const TRANSLATION = /translat|wmt|para_crawl|\bmt\b/i;

/**
 * The task's metric: `metric:` in the registry, else BLEU for translation tasks, exact match when
 * the targets are labels (short, few distinct values), ROUGE-L for other generation.
 */
export function metricFor(task: Pick<TaskDefinition, 'id' | 'domain' | 'metric' | 'targets'>): TaskMetric {
  if (task.metric) return task.metric;
  if (TRANSLATION.test(task.id) || TRANSLATION.test(task.domain ?? '')) return 'bleu';
  const targets = (task.targets ?? []).filter((target): target is string => target !== null);
  if (targets.length === 0) return 'rouge_l';
  const meanWords = targets.reduce((sum, target) => sum + normalizeAnswer(target).split(' ').length, 0) / targets.length;
  const distinct = new Set(targets.map(normalizeAnswer)).size;
  return meanWords <= 3 && distinct <= Math.max(10, targets.length / 2) ? 'exact' : 'rouge_l';
}
