import { scaleLinear, scaleSymlog } from 'd3-scale';
import { line } from 'd3-shape';
import type { AbstentionPoint, EvaluationReport } from '../router/evaluation.js';

const WIDTH = 760;
const HEIGHT = 360;
const MARGIN = { top: 20, right: 250, bottom: 45, left: 55 };
const SERIES: { key: keyof Omit<AbstentionPoint, 'threshold'>; label: string; dash: string }[] = [
  { key: 'inDomain', label: 'in-domain (false)', dash: '' },
  { key: 'outOfDomain', label: 'OOD (own excluded)', dash: '6 3' },
  { key: 'offTopic', label: 'off-topic', dash: '2 3' },
];
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

const escape = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The abstention trade-off as an SVG line chart: share abstaining against the confidence threshold, per encoder. */
export function sweepPlot(reports: readonly EvaluationReport[]): string {
  const thresholds = reports.flatMap((report) => report.sweep.map((point) => point.threshold));
  // Most of the action is at small thresholds: a symmetric log scale keeps 0 and spreads them out.
  const x = scaleSymlog().constant(0.001).domain([0, Math.max(...thresholds)]).range([MARGIN.left, WIDTH - MARGIN.right]);
  const y = scaleLinear().domain([0, 1]).range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  for (const tick of y.ticks(5)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end">${Math.round(tick * 100)}%</text>`);
  }
  for (const tick of [...new Set(thresholds)].filter((_, i) => i % 2 === 0)) {
    parts.push(`<text x="${x(tick)}" y="${HEIGHT - MARGIN.bottom + 15}" text-anchor="middle">${tick}</text>`);
  }
  parts.push(`<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 8}" text-anchor="middle">minimum confidence (symlog)</text>`);
  parts.push(`<text transform="rotate(-90)" x="${-(HEIGHT - MARGIN.bottom + MARGIN.top) / 2}" y="14" text-anchor="middle">share of prompts abstaining</text>`);
  const chosen = reports[0]?.abstention.threshold;
  if (chosen !== undefined) {
    parts.push(`<line x1="${x(chosen)}" x2="${x(chosen)}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#999" stroke-dasharray="3 3"/>`);
    parts.push(`<text x="${x(chosen) + 4}" y="${HEIGHT - MARGIN.bottom - 6}" fill="#666">${chosen}</text>`);
  }
  let legend = MARGIN.top;
  reports.forEach((report, r) => {
    for (const series of SERIES) {
      const points = report.sweep.filter((point) => point[series.key] !== undefined);
      if (points.length === 0) continue;
      const path = line<AbstentionPoint>()
        .x((point) => x(point.threshold))
        .y((point) => y(point[series.key] as number))(points);
      parts.push(`<path d="${path}" fill="none" stroke="${COLOURS[r % COLOURS.length]}" stroke-width="2" stroke-dasharray="${series.dash}"/>`);
      parts.push(`<line x1="${WIDTH - MARGIN.right + 10}" x2="${WIDTH - MARGIN.right + 34}" y1="${legend}" y2="${legend}" stroke="${COLOURS[r % COLOURS.length]}" stroke-width="2" stroke-dasharray="${series.dash}"/>`);
      parts.push(`<text x="${WIDTH - MARGIN.right + 38}" y="${legend + 4}">${escape(`${report.encoder.split(':')[0]} ${series.label}`)}</text>`);
      legend += 16;
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}
