// npm run bench:calibration: best-arm identification on planted task × adapter matrices (the issue's hub scale:
// 20 tasks, 300 candidates, 20 examples a task), each strategy at 20% of a row and at the default budget (half a
// row), with the full matrix as the ceiling. In process: the upstream is a stand-in answering with planted accuracy.
import { calibrate, type CalibrationStrategy } from '../src/calibration/calibrate.js';
import { AnswerTable } from '../src/calibration/results-file.js';
import { PLANTED_SHAPES, plantedMatrix } from '../test/helpers/planted-matrix.js';

const rows: Record<string, unknown>[] = [];
const runs: [CalibrationStrategy, number | undefined][] = [['full', undefined], ['halving', 1200], ['bounds', 1200], ['halving', undefined], ['bounds', undefined]];
for (const shape of PLANTED_SHAPES) {
  for (const [strategy, budget] of runs) {
    const planted = plantedMatrix(shape);
    const report = await calibrate(planted.registry, { strategy, budget, concurrency: 16, ask: planted.ask, results: new AnswerTable() });
    const found = report.tasks.filter((task) => task.best === planted.best.get(task.task)).length;
    rows.push({
      shape: shape.name,
      strategy: `${strategy}${strategy === 'full' ? '' : budget ? `, budget ${budget} (20% of a row)` : ', default budget (half a row)'}`,
      found: `${found}/${report.tasks.length}`,
      calls: planted.calls(),
      'share of the full matrix': `${((100 * planted.calls()) / planted.fullMatrixCalls).toFixed(1)}%`,
    });
  }
}
console.table(rows);
