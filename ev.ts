import { BuiltinEncoder } from './src/encoders/builtin/builtin-encoder.ts';
import { loadRegistry } from './src/registry/load.ts';
import { evaluateRouting } from './src/router/evaluation.ts';
const reg = loadRegistry(process.env.TASKS ?? '/work/shared/data/flan-tasks.jsonl');
for (const opts of JSON.parse(process.argv[2])) {
  const r = await evaluateRouting(reg, { folds: 5, excludeOwn: true, topK: 3, temperature: 0.2, encoder: { kind: 'builtin', forTasks: (tasks) => BuiltinEncoder.fit(tasks, opts), close: async () => {} } });
  console.log(JSON.stringify(opts), r.top1.toFixed(3), r.top3.toFixed(3), r.domain.toFixed(3), r.outOfDomain!.domainTop1.toFixed(3), r.outOfDomain!.domainTop3.toFixed(3), (r.msPerPrompt*1000).toFixed(1)+'us');
}
