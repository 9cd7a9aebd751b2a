import type { Row } from './types.ts';

const fmt = (n: number): string => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

/** Renders every row as one aligned plain-text table. */
export function renderTable(rows: Row[]): string {
  const header = ['benchmark', 'measurement', 'result', 'compared with', 'ratio', 'goal', 'met'];
  const body = rows.map((r) => [
    r.benchmark,
    r.measurement,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline ? `${r.baseline.label}: ${fmt(r.baseline.value)} ${r.unit}` : '',
    r.baseline && r.baseline.value !== 0 ? fmt(r.value / r.baseline.value) : '',
    r.goal?.text ?? '',
    r.goal ? (r.goal.met ? 'yes' : 'NO') : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
