/** The benchmark's printed table: throughput per contender and sluice's ratios to the others. */
import type { BaselineName } from './support.js';

/** One row of the table: the median rates of its sluice contender and baselines, in msg/s. */
export interface RowResult {
  readonly label: string;
  readonly rates: Readonly<Record<'sluice' | BaselineName, number>>;
}

const COLUMNS = [
  'scenario',
  'sluice msg/s',
  'raw msg/s',
  'BullMQ msg/s',
  'sluice/raw',
  'sluice/BullMQ',
];

/** Whole numbers with thousands separators, as the table prints them. */
export const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function ratio(numerator: number, denominator: number): string {
  return `${(numerator / denominator).toFixed(2)}x`;
}

function row(result: RowResult): string[] {
  const { sluice, raw, bullmq } = result.rates;
  return [
    result.label,
    integer.format(sluice),
    integer.format(raw),
    integer.format(bullmq),
    ratio(sluice, raw),
    ratio(sluice, bullmq),
  ];
}

/** A plain-text table; the first column left-aligned, the numbers right-aligned. */
export function formatTable(results: readonly RowResult[]): string {
  const rows = [COLUMNS, ...results.map(row)];
  const widths = COLUMNS.map((_, column) =>
    Math.max(...rows.map((cells) => (cells[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return column === 0 ? cell.padEnd(width) : cell.padStart(width);
      })
      .join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(COLUMNS), rule, ...results.map((result) => line(row(result)))].join('\n');
}
