import { scaleLinear } from 'd3-scale';
import { line } from 'd3-shape';

export interface SoakSample {
  seconds: number;
  rssMb: number;
  heapMb: number;
  loopP99Ms: number;
}

const WIDTH = 760;
const HEIGHT = 340;
const MARGIN = { top: 34, right: 170, bottom: 45, left: 55 };

/** RSS and heap in use over a soak, with its events (a Redis restart) marked: what docs/soak-memory.svg shows. */
export function soakPlot(samples: readonly SoakSample[], events: readonly { seconds: number; label: string }[], title: string): string {
  const x = scaleLinear().domain([0, Math.max(...samples.map((s) => s.seconds)) / 60]).range([MARGIN.left, WIDTH - MARGIN.right]);
  const y = scaleLinear().domain([0, Math.max(...samples.map((s) => s.rssMb)) * 1.15]).nice().range([HEIGHT - MARGIN.bottom, MARGIN.top]);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>`,
  ];
  for (const tick of y.ticks(6)) {
    parts.push(`<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(tick)}" y2="${y(tick)}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y(tick) + 4}" text-anchor="end">${tick}</text>`);
  }
  for (const tick of x.ticks(10)) parts.push(`<text x="${x(tick)}" y="${HEIGHT - MARGIN.bottom + 15}" text-anchor="middle">${tick}</text>`);
  parts.push(`<text x="${(MARGIN.left + WIDTH - MARGIN.right) / 2}" y="${HEIGHT - 8}" text-anchor="middle">minutes</text>`);
  parts.push(`<text transform="rotate(-90)" x="${-(HEIGHT - MARGIN.bottom + MARGIN.top) / 2}" y="14" text-anchor="middle">MB</text>`);
  for (const event of events) {
    parts.push(`<line x1="${x(event.seconds / 60)}" x2="${x(event.seconds / 60)}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#999" stroke-dasharray="3 3"/>`);
    parts.push(`<text x="${x(event.seconds / 60) + 4}" y="${MARGIN.top + 10}" fill="#666">${event.label}</text>`);
  }
  const series: { label: string; colour: string; value: (s: SoakSample) => number }[] = [
    { label: 'resident set (RSS)', colour: '#1f77b4', value: (s) => s.rssMb },
    { label: 'JS heap in use', colour: '#d62728', value: (s) => s.heapMb },
  ];
  series.forEach((item, i) => {
    const path = line<SoakSample>().x((s) => x(s.seconds / 60)).y((s) => y(item.value(s)))(samples);
    parts.push(`<path d="${path}" fill="none" stroke="${item.colour}" stroke-width="1.5"/>`);
    const legendY = MARGIN.top + 10 + i * 18;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 10}" x2="${WIDTH - MARGIN.right + 34}" y1="${legendY}" y2="${legendY}" stroke="${item.colour}" stroke-width="2"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 38}" y="${legendY + 4}">${item.label}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
