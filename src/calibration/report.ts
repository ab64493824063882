import { scaleBand, scaleLinear } from 'd3-scale';
import { meanOf } from './halving.js';
import type { CalibrationReport } from './calibrate.js';

const csvCell = (value: string) => (/[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

/** The performance matrix as CSV: a row per task, a column per adapter (empty where not scored), then the examples each score is on. */
export function matrixCsv(report: CalibrationReport): string {
  const header = ['task', 'metric', 'best', ...report.adapters, ...report.adapters.map((adapter) => `n:${adapter}`), 'runner_up', 'margin'];
  const rows = report.tasks.map((result) => {
    const tallies = new Map(result.tallies.map((tally) => [tally.adapter, tally]));
    const scores = report.adapters.map((adapter) => (tallies.get(adapter)?.count ? meanOf(tallies.get(adapter)!).toFixed(4) : ''));
    const counts = report.adapters.map((adapter) => String(tallies.get(adapter)?.count ?? 0));
    const runnerUp = result.finalists[1];
    return [result.task, result.metric, result.best, ...scores, ...counts, runnerUp?.adapter ?? '', runnerUp ? marginOf(result).toFixed(4) : ''];
  });
  return `${[header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n')}\n`;
}

/** How far the chosen adapter's score is above the runner-up's (on the same examples for halving and full). */
export const marginOf = (result: CalibrationReport['tasks'][number]) => (result.finalists[1] ? meanOf(result.finalists[0]) - meanOf(result.finalists[1]) : 1);

const escapeXml = (text: string) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);

/** The performance matrix as an SVG heat map (d3-scale): darker is better, grey not scored, the chosen adapter outlined. */
export function matrixHeatmap(report: CalibrationReport): string {
  const cell = 28;
  const left = 10 + 7 * Math.max(...report.tasks.map((result) => result.task.length), 4);
  const top = 10 + 7 * Math.max(...report.adapters.map((adapter) => adapter.length), 4);
  const marginColumn = 150;
  const width = left + cell * report.adapters.length + 20 + marginColumn;
  const height = top + cell * report.tasks.length + 20;
  const x = scaleBand<string>().domain(report.adapters).range([left, left + cell * report.adapters.length]);
  const y = scaleBand<string>().domain(report.tasks.map((result) => result.task)).range([top, top + cell * report.tasks.length]);
  const colour = scaleLinear<string>().domain([0, 1]).range(['#f7fbff', '#08306b']);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  for (const adapter of report.adapters) {
    const cx = x(adapter)! + cell / 2;
    parts.push(`<text transform="translate(${cx},${top - 6}) rotate(-60)">${escapeXml(adapter)}</text>`);
  }
  for (const result of report.tasks) {
    const rowY = y(result.task)!;
    parts.push(`<text x="${left - 6}" y="${rowY + cell / 2 + 4}" text-anchor="end">${escapeXml(result.task)}</text>`);
    const tallies = new Map(result.tallies.map((tally) => [tally.adapter, tally]));
    for (const adapter of report.adapters) {
      const tally = tallies.get(adapter);
      const scored = tally !== undefined && tally.count > 0;
      const value = scored ? meanOf(tally) : 0;
      const fill = scored ? colour(value) : '#d9d9d9';
      const outline = adapter === result.best ? ' stroke="#d62728" stroke-width="2"' : ' stroke="white"';
      parts.push(`<rect x="${x(adapter)}" y="${rowY}" width="${cell}" height="${cell}" fill="${fill}"${outline}><title>${escapeXml(`${result.task} × ${adapter}: ${scored ? `${value.toFixed(3)} on ${tally.count} examples` : 'not scored'}`)}</title></rect>`);
      if (scored) parts.push(`<text x="${x(adapter)! + cell / 2}" y="${rowY + cell / 2 + 4}" text-anchor="middle" font-size="9" fill="${value > 0.5 ? 'white' : 'black'}">${Math.round(value * 100)}</text>`);
    }
    // The runner-up's margin: a thin one says the choice could go either way with more examples.
    const runnerUp = result.finalists[1];
    const note = runnerUp ? `+${marginOf(result).toFixed(3)} over ${runnerUp.adapter}` : 'no runner-up';
    parts.push(`<text x="${left + cell * report.adapters.length + 8}" y="${rowY + cell / 2 + 4}" fill="${runnerUp && marginOf(result) < 0.1 ? '#d62728' : '#333'}">${escapeXml(note)}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** Each task's best adapters, for the terminal. */
export function bestAdaptersTable(report: CalibrationReport): Record<string, string | number>[] {
  return report.tasks.map((result) => ({
    task: result.task,
    metric: result.metric,
    best: result.best,
    score: Number(meanOf(result.finalists[0]).toFixed(3)),
    'runner-up': result.finalists[1] ? `${result.finalists[1].adapter} (${meanOf(result.finalists[1]).toFixed(3)})` : '',
    examples: result.finalists[0].count,
    margin: result.finalists[1] ? Number(marginOf(result).toFixed(3)) : '',
    calls: result.tallies.reduce((sum, tally) => sum + tally.count, 0),
  }));
}
