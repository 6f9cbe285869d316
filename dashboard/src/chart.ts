import type { DepthSample, QueueDepth } from '../../src/dashboard/types.js';
import { h, s } from './dom.js';

const WIDTH = 900;
const HEIGHT = 220;
const PAD = { left: 48, right: 12, top: 12, bottom: 24 };
/** Colours of the lines, one a queue, in the order queues are listed. */
export const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#d97706',
  '#7c3aed',
  '#0891b2',
  '#db2777',
  '#65a30d',
];

/**
 * The states plotted, each a line style in its queue's colour: ready solid, unacked dashed,
 * delayed dotted, so that a failing queue's retries show where its ready line drops.
 */
const STATES: readonly { readonly state: keyof QueueDepth; readonly dash: string }[] = [
  { state: 'ready', dash: '' },
  { state: 'unacked', dash: '8 4' },
  { state: 'delayed', dash: '2 3' },
];

/** A line chart of each queue's ready, unacked and delayed messages over the sampled history. */
export function depthChart(
  queues: readonly string[],
  history: readonly DepthSample[],
): HTMLElement {
  const times = history.map((sample) => sample.time);
  const first = times[0] ?? 0;
  const span = Math.max((times[times.length - 1] ?? 0) - first, 1);
  const top = Math.max(
    1,
    ...history.flatMap((sample) =>
      Object.values(sample.depth).flatMap(({ ready, unacked, delayed }) => [
        ready,
        unacked,
        delayed,
      ]),
    ),
  );
  const x = (time: number): number =>
    PAD.left + ((time - first) / span) * (WIDTH - PAD.left - PAD.right);
  const y = (depth: number): number =>
    HEIGHT - PAD.bottom - (depth / top) * (HEIGHT - PAD.top - PAD.bottom);
  const colour = (i: number): string => PALETTE[i % PALETTE.length] ?? '#000';
  const lines = queues.flatMap((queue, i) =>
    STATES.map(({ state, dash }) => {
      const points = history.flatMap((sample) => {
        const depth = sample.depth[queue];
        return depth === undefined
          ? []
          : [`${x(sample.time).toFixed(1)},${y(depth[state]).toFixed(1)}`];
      });
      return s('polyline', {
        points: points.join(' '),
        fill: 'none',
        stroke: colour(i),
        'stroke-width': 2,
        'stroke-dasharray': dash,
        'data-queue': queue,
        'data-state': state,
      });
    }),
  );
  const seconds = Math.round(span / 1000);
  const chart = s(
    'svg',
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: 'chart',
      role: 'img',
      'aria-label': 'ready, unacked and delayed messages of each queue over time',
    },
    s('line', { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), class: 'axis' }),
    s('line', { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y(0), class: 'axis' }),
    s('text', { x: PAD.left - 6, y: PAD.top + 10, 'text-anchor': 'end', class: 'tick' }, top),
    s('text', { x: PAD.left - 6, y: y(0), 'text-anchor': 'end', class: 'tick' }, 0),
    s(
      'text',
      { x: PAD.left, y: HEIGHT - 6, class: 'tick' },
      history.length > 1 ? `${seconds} s ago` : 'collecting…',
    ),
    s('text', { x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end', class: 'tick' }, 'now'),
    ...lines,
  );
  const legend = h(
    'div',
    { class: 'legend' },
    ...queues.map((queue, i) => h('span', {}, h('i', { style: `background:${colour(i)}` }), queue)),
    ...STATES.map(({ state, dash }) =>
      h(
        'span',
        {},
        s(
          'svg',
          { width: 24, height: 8, class: 'dash' },
          s('line', {
            x1: 0,
            y1: 4,
            x2: 24,
            y2: 4,
            stroke: '#555',
            'stroke-width': 2,
            'stroke-dasharray': dash,
          }),
        ),
        state,
      ),
    ),
  );
  return h('div', { 'data-testid': 'depth-chart' }, chart, legend);
}
