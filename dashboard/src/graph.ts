import type { BindingView, ExchangeView, QueueView } from '../../src/dashboard/types.js';
import { h, s } from './dom.js';

const ROW = 44;
const BOX = { width: 190, height: 30 };
const COLUMN_GAP = 150;

/**
 * The bindings as a graph: exchanges in columns by how deep they sit behind other exchanges
 * (exchange-to-exchange bindings), queues in the last column, an arrow per binding labelled
 * with its key. The default exchange's implicit bindings (every queue by its name) are left
 * out, as RabbitMQ's management UI leaves them out.
 */
export function bindingsGraph(
  exchanges: readonly ExchangeView[],
  queues: readonly QueueView[],
  bindings: readonly BindingView[],
): HTMLElement {
  // Exchanges with bindings first, so that arrows stay short; the unused ones (amq.*) below.
  const bound = new Set(bindings.map((binding) => binding.source));
  const shown = exchanges
    .filter((exchange) => exchange.name !== '')
    .sort((a, b) => Number(bound.has(b.name)) - Number(bound.has(a.name)));
  const depth = new Map<string, number>(shown.map((exchange) => [exchange.name, 0]));
  // Each pass pushes a bound exchange one column right of its source; as many passes as there
  // are exchanges settles any chain (a cycle stops there).
  for (let pass = 0; pass < shown.length; pass++) {
    for (const binding of bindings) {
      if (binding.destinationType !== 'exchange') continue;
      const from = depth.get(binding.source) ?? 0;
      if ((depth.get(binding.destination) ?? 0) <= from)
        depth.set(binding.destination, Math.min(from + 1, shown.length));
    }
  }
  const columns = Math.max(0, ...depth.values()) + 1;
  const position = new Map<string, { x: number; y: number }>();
  const rows = new Array<number>(columns + 1).fill(0);
  for (const exchange of shown) {
    const column = depth.get(exchange.name) ?? 0;
    position.set(`e:${exchange.name}`, {
      x: column * (BOX.width + COLUMN_GAP),
      y: (rows[column] ?? 0) * ROW,
    });
    rows[column] = (rows[column] ?? 0) + 1;
  }
  for (const queue of queues) {
    position.set(`q:${queue.name}`, {
      x: columns * (BOX.width + COLUMN_GAP),
      y: (rows[columns] ?? 0) * ROW,
    });
    rows[columns] = (rows[columns] ?? 0) + 1;
  }
  const width = (columns + 1) * (BOX.width + COLUMN_GAP) - COLUMN_GAP + 2;
  const height = Math.max(1, ...rows) * ROW;
  const edges = bindings.flatMap((binding) => {
    const from = position.get(`e:${binding.source}`);
    const to = position.get(
      `${binding.destinationType === 'queue' ? 'q' : 'e'}:${binding.destination}`,
    );
    if (from === undefined || to === undefined) return [];
    const x1 = from.x + BOX.width;
    const y1 = from.y + BOX.height / 2;
    const x2 = to.x;
    const y2 = to.y + BOX.height / 2;
    const middle = (x1 + x2) / 2;
    return [
      s('path', {
        d: `M${x1},${y1} C${middle},${y1} ${middle},${y2} ${x2 - 6},${y2}`,
        class: 'edge',
        'marker-end': 'url(#arrow)',
      }),
      // Labelled at the arrow's head, where arrows into different queues are apart.
      s(
        'text',
        { x: x2 - 10, y: y2 - 5, 'text-anchor': 'end', class: 'edge-label' },
        binding.bindingKey || '∗',
      ),
    ];
  });
  const node = (key: string, label: string, kind: string, href?: string): SVGElement => {
    const at = position.get(key) ?? { x: 0, y: 0 };
    const box = s(
      'g',
      { transform: `translate(${at.x},${at.y})`, class: `node ${kind}` },
      s('rect', { width: BOX.width, height: BOX.height, rx: 6 }),
      s('text', { x: 10, y: 20 }, label),
    );
    return href === undefined ? box : s('a', { href }, box);
  };
  return h(
    'div',
    { class: 'graph', 'data-testid': 'bindings-graph' },
    s(
      'svg',
      { viewBox: `-1 -1 ${width} ${height}`, width, height },
      s(
        'defs',
        {},
        s(
          'marker',
          {
            id: 'arrow',
            viewBox: '0 0 10 10',
            refX: 4,
            refY: 5,
            markerWidth: 6,
            markerHeight: 6,
            orient: 'auto',
          },
          s('path', { d: 'M0,0 L10,5 L0,10 z' }),
        ),
      ),
      ...edges,
      ...shown.map((exchange) =>
        node(`e:${exchange.name}`, `${exchange.name} (${exchange.type})`, 'exchange'),
      ),
      ...queues.map((queue) =>
        node(`q:${queue.name}`, queue.name, 'queue', `#/queues/${encodeURIComponent(queue.name)}`),
      ),
    ),
  );
}
