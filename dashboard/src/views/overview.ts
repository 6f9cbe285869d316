import type { OverviewView, QueueView } from '../../../src/dashboard/types.js';
import { segment } from '../api.js';
import { depthChart } from '../chart.js';
import { duration } from '../../../src/dashboard/format.js';
import { dataTable, figure, h, rate } from '../dom.js';
import { bindingsGraph } from '../graph.js';

/** The queues that receive dead letters: bound to an exchange that some queue dead-letters to. */
export function deadLetterQueues(overview: OverviewView): Set<string> {
  const exchanges = new Set(
    overview.queues.flatMap((queue) =>
      queue.deadLetterExchange === null ? [] : [queue.deadLetterExchange],
    ),
  );
  return new Set(
    overview.bindings
      .filter((binding) => binding.destinationType === 'queue' && exchanges.has(binding.source))
      .map((binding) => binding.destination),
  );
}

function card(label: string, value: number | string): HTMLElement {
  return h(
    'div',
    { class: 'card' },
    h('div', { class: 'value' }, value),
    h('div', { class: 'label' }, label),
  );
}

function queueRow(queue: QueueView, dlqs: ReadonlySet<string>): (Node | string)[] {
  return [
    h(
      'a',
      { href: `#/queues/${segment(queue.name)}` },
      queue.name,
      dlqs.has(queue.name) ? h('span', { class: 'badge' }, 'DLQ') : '',
    ),
    figure(queue.ready),
    figure(queue.unacked),
    figure(queue.delayed),
    duration(queue.lagMs),
    figure(queue.consumers),
    figure(queue.partitions),
    rate(queue.publishRate),
    rate(queue.deliverRate),
    rate(queue.ackRate),
    rate(queue.redeliverRate),
    rate(queue.deadLetterRate),
    figure(queue.totals.dropped),
  ];
}

/** The overview: totals, depth over time, queues, exchanges and the bindings graph. */
export function overviewPage(overview: OverviewView): HTMLElement {
  const total = (
    field: 'ready' | 'unacked' | 'publishRate' | 'deliverRate' | 'redeliverRate' | 'deadLetterRate',
  ): number => overview.queues.reduce((sum, queue) => sum + (queue[field] ?? 0), 0);
  const dlqs = deadLetterQueues(overview);
  return h(
    'div',
    { 'data-testid': 'overview' },
    h(
      'section',
      { class: 'cards' },
      card('exchanges', overview.exchanges.length),
      card('queues', overview.queues.length),
      card('ready', total('ready')),
      card('unacked', total('unacked')),
      card('publish rate', rate(total('publishRate'))),
      card('deliver rate', rate(total('deliverRate'))),
      card('redeliver rate', rate(total('redeliverRate'))),
      card('dead-letter rate', rate(total('deadLetterRate'))),
    ),
    h('h2', {}, 'Queue depth'),
    depthChart(
      overview.queues.map((queue) => queue.name),
      overview.history,
    ),
    h('h2', {}, 'Queues'),
    dataTable(
      'queues',
      [
        'name',
        'ready',
        'unacked',
        'delayed',
        'lag',
        'consumers',
        'partitions',
        'publish',
        'deliver',
        'ack',
        'redeliver',
        'dead-letter',
        'dropped',
      ],
      overview.queues.map((queue) => queueRow(queue, dlqs)),
      'no queues declared',
    ),
    h('h2', {}, 'Exchanges'),
    dataTable(
      'exchanges',
      ['name', 'type', 'bindings'],
      overview.exchanges.map((exchange) => [
        exchange.name === '' ? '(default)' : exchange.name,
        exchange.type,
        String(overview.bindings.filter((binding) => binding.source === exchange.name).length),
      ]),
    ),
    h('h2', {}, 'Bindings'),
    bindingsGraph(overview.exchanges, overview.queues, overview.bindings),
  );
}
