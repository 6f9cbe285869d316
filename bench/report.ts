/**
 * The results of a run: per row the medians and spread of its contenders over the rounds,
 * sluice's ratios to the baselines and whether each target is met; printed as markdown tables
 * (and written as JSON by the runner).
 */
import {
  contendersOf,
  type BaselineName,
  type Measurement,
  type Metric,
  type Scenario,
} from './support.js';

/** What one run of one contender measured, in one process. */
export interface RunRecord {
  /** 0-based measured round. */
  readonly round: number;
  readonly scenario: string;
  readonly contender: string;
  readonly messages: number;
  readonly measurement: Measurement;
}

/** One value over the rounds: their median, least and greatest, and each round's. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: readonly number[];
}

/** sluice's median over a baseline's, and the target for that ratio if the row has one. */
export interface Ratio {
  readonly ratio: number;
  readonly target?: number;
  readonly met?: boolean;
}

/** A row of the table. */
export interface RowResult {
  readonly scenario: string;
  readonly label: string;
  readonly metric: Metric;
  /** How good a larger value is: a rate's is better, a latency's or a size's is worse. */
  readonly higherIsBetter: boolean;
  /** Absent for a contender that does not measure this metric. */
  readonly values: Partial<Record<'sluice' | BaselineName, Spread>>;
  readonly ratios: Partial<Record<BaselineName, Ratio>>;
}

/** Two contenders of one scenario compared: the ratio of their medians, and per round. */
export interface ComparisonResult {
  readonly scenario: string;
  readonly label: string;
  readonly ratio: number;
  readonly perRound: readonly number[];
  readonly target?: number;
  readonly met?: boolean;
}

/** Every row's and every comparison's results. */
export interface Summary {
  readonly rows: readonly RowResult[];
  readonly comparisons: readonly ComparisonResult[];
}

/** Whole numbers with thousands separators, as the tables print them. */
export const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** How each metric reads: its name in the list of rounds, whether more is better, its unit. */
const METRICS: Readonly<
  Record<Metric, { name: string; higherIsBetter: boolean; format(value: number): string }>
> = {
  msgPerSecond: { name: 'rate', higherIsBetter: true, format: (v) => `${integer.format(v)} msg/s` },
  p50Ms: { name: 'p50', higherIsBetter: false, format: milliseconds },
  p99Ms: { name: 'p99', higherIsBetter: false, format: milliseconds },
  maxMs: { name: 'max', higherIsBetter: false, format: milliseconds },
  streamBytesPerMessage: { name: 'stream', higherIsBetter: false, format: bytes },
  bytesPerMessage: { name: 'all keys', higherIsBetter: false, format: bytes },
};

function milliseconds(value: number): string {
  return `${value.toFixed(2)} ms`;
}

function bytes(value: number): string {
  return `${integer.format(value)} B`;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}

function spreadOf(rounds: readonly number[]): Spread {
  return { median: median(rounds), min: Math.min(...rounds), max: Math.max(...rounds), rounds };
}

/** The value of `metric` that `contender` of `scenario` measured in each round, in round order. */
function valuesOf(
  records: readonly RunRecord[],
  scenario: string,
  contender: string,
  metric: Metric,
): number[] | undefined {
  const values = records
    .filter((record) => record.scenario === scenario && record.contender === contender)
    .sort((a, b) => a.round - b.round)
    .map((record) => record.measurement[metric]);
  if (values.length === 0) throw new Error(`no result of ${contender} in scenario ${scenario}`);
  if (values.every((value) => value === undefined)) return undefined;
  return values.map((value) => {
    if (value === undefined) throw new Error(`${contender} measured no ${metric} in some round`);
    return value;
  });
}

function meets(ratio: number, target: number, higherIsBetter: boolean): boolean {
  return higherIsBetter ? ratio >= target : ratio <= target;
}

/** The rows and comparisons of `scenarios` from the runs in `records`. */
export function summarize(scenarios: readonly Scenario[], records: readonly RunRecord[]): Summary {
  const rows = scenarios.flatMap((scenario) =>
    scenario.rows.map((row): RowResult => {
      const metric = row.metric ?? 'msgPerSecond';
      const { higherIsBetter } = METRICS[metric];
      const spread = (name: string): Spread | undefined => {
        const values = valuesOf(records, scenario.id, name, metric);
        return values === undefined ? undefined : spreadOf(values);
      };
      const sluice = spread(row.sluice.name);
      if (sluice === undefined) throw new Error(`${row.sluice.name} measured no ${metric}`);
      const values: RowResult['values'] = { sluice };
      const ratios: RowResult['ratios'] = {};
      for (const baseline of ['raw', 'bullmq'] as const) {
        const value = spread(scenario.baselines[baseline].name);
        if (value === undefined) continue;
        values[baseline] = value;
        const ratio = sluice.median / value.median;
        const target = row.targets?.[baseline];
        ratios[baseline] =
          target === undefined
            ? { ratio }
            : { ratio, target, met: meets(ratio, target, higherIsBetter) };
      }
      return { scenario: scenario.id, label: row.label, metric, higherIsBetter, values, ratios };
    }),
  );
  const comparisons = scenarios.flatMap((scenario) =>
    (scenario.comparisons ?? []).map((comparison): ComparisonResult => {
      const rates = (name: string): number[] =>
        valuesOf(records, scenario.id, name, 'msgPerSecond') ?? [];
      const numerator = rates(comparison.numerator.name);
      const denominator = rates(comparison.denominator.name);
      const ratio = median(numerator) / median(denominator);
      const perRound = numerator.map((rate, i) => rate / (denominator[i] ?? Number.NaN));
      const { label, target } = comparison;
      const base = { scenario: scenario.id, label, ratio, perRound };
      return target === undefined ? base : { ...base, target, met: ratio >= target };
    }),
  );
  return { rows, comparisons };
}

/**
 * A value with its spread: the median, then the largest distance of a round from it in percent
 * of it.
 */
function formatSpread(metric: Metric, spread: Spread | undefined): string {
  if (spread === undefined) return '—';
  const distance = Math.max(spread.max - spread.median, spread.median - spread.min);
  const percent = spread.median === 0 ? 0 : (100 * distance) / spread.median;
  return `${METRICS[metric].format(spread.median)} ±${percent.toFixed(0)}%`;
}

function formatRatio(ratio: number): string {
  return `${ratio.toFixed(2)}x`;
}

function formatTarget(
  target: number | undefined,
  met: boolean | undefined,
  atLeast: boolean,
): string {
  if (target === undefined) return '';
  return `${atLeast ? '≥' : '≤'} ${target.toFixed(1)}x ${met === true ? 'met' : 'missed'}`;
}

/** A markdown table with its columns padded; `right` says which columns are right-aligned. */
function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly boolean[],
): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) =>
    Math.max(3, ...all.map((cells) => (cells[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    `| ${cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return right[column] === true ? cell.padStart(width) : cell.padEnd(width);
      })
      .join(' | ')} |`;
  const rule = `| ${widths
    .map((width, column) =>
      right[column] === true ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width),
    )
    .join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The table of rows: medians with their spread, ratios to each baseline, targets. */
export function formatRows(rows: readonly RowResult[]): string {
  const header = [
    'scenario',
    'sluice',
    'raw',
    'BullMQ',
    'sluice/raw',
    'target',
    'sluice/BullMQ',
    'target',
  ];
  const cells = rows.map((row) => {
    const ratio = (baseline: BaselineName): string => {
      const found = row.ratios[baseline];
      return found === undefined ? '—' : formatRatio(found.ratio);
    };
    const target = (baseline: BaselineName): string => {
      const found = row.ratios[baseline];
      return formatTarget(found?.target, found?.met, row.higherIsBetter);
    };
    return [
      row.label,
      formatSpread(row.metric, row.values.sluice),
      formatSpread(row.metric, row.values.raw),
      formatSpread(row.metric, row.values.bullmq),
      ratio('raw'),
      target('raw'),
      ratio('bullmq'),
      target('bullmq'),
    ];
  });
  return markdownTable(header, cells, [false, true, true, true, true, false, true, false]);
}

/** The table of comparisons of two rows: the ratio of their medians, and of each round. */
export function formatComparisons(comparisons: readonly ComparisonResult[]): string {
  const header = ['rows compared', 'ratio', 'per round', 'target'];
  const cells = comparisons.map((comparison) => [
    comparison.label,
    formatRatio(comparison.ratio),
    comparison.perRound.map(formatRatio).join(', '),
    formatTarget(comparison.target, comparison.met, true),
  ]);
  return markdownTable(header, cells, [false, true, true, false]);
}

/** What one run measured, on one line: `rate 12,345 msg/s, p99 1.23 ms`. */
export function formatMeasurement(measurement: Measurement): string {
  return (Object.keys(measurement) as Metric[])
    .map(
      (metric) => `${METRICS[metric].name} ${METRICS[metric].format(measurement[metric] ?? NaN)}`,
    )
    .join(', ');
}

/** One line per scenario and contender with its value of each metric in every round. */
export function formatRounds(
  scenarios: readonly Scenario[],
  records: readonly RunRecord[],
): string {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    for (const contender of contendersOf(scenario)) {
      const runs = records
        .filter((r) => r.scenario === scenario.id && r.contender === contender.name)
        .sort((a, b) => a.round - b.round);
      const metrics = Object.keys(runs[0]?.measurement ?? {}) as Metric[];
      const values = metrics.map((metric) => {
        const perRound = runs.map((run) => METRICS[metric].format(run.measurement[metric] ?? NaN));
        return `${METRICS[metric].name} ${perRound.join(', ')}`;
      });
      lines.push(`- ${scenario.id} ${contender.name}: ${values.join('; ')}`);
    }
  }
  return lines.join('\n');
}
