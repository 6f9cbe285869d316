import type { DeadLetterPage, PeekedMessage, QueueInfo, ReplayResult } from '../../../src/index.js';
import type { DeadLetter, ForeignEntry } from '../../../src/index.js';
import { get, post, segment } from '../api.js';
import type { QueueView } from '../../../src/dashboard/types.js';
import { duration } from '../../../src/dashboard/format.js';
import { dataTable, figure, h, rate } from '../dom.js';
import { confirmAction } from '../modal.js';

/** What GET /api/queues/:name answers. */
interface QueuePage {
  readonly info: QueueInfo;
  readonly messages: readonly PeekedMessage[];
}

function body(message: DeadLetter | ForeignEntry): string {
  return JSON.stringify('messageId' in message ? message.body : message.fields);
}

/** The queue's counts now, with its lag and rates from the overview's latest reading. */
function counts(info: QueueInfo, view: QueueView | undefined): HTMLElement {
  const now = [info.messages, info.unacked, info.delayed, info.deadLetterBacklog, info.consumers];
  return dataTable(
    'queue-counts',
    [
      'ready',
      'unacked',
      'delayed',
      'dead-letter backlog',
      'consumers',
      'lag',
      'publish',
      'deliver',
      'ack',
      'redeliver',
      'dead-letter',
    ],
    [
      [
        ...now.map(figure),
        view === undefined ? '—' : duration(view.lagMs),
        rate(view?.publishRate ?? null),
        rate(view?.deliverRate ?? null),
        rate(view?.ackRate ?? null),
        rate(view?.redeliverRate ?? null),
        rate(view?.deadLetterRate ?? null),
      ],
    ],
  );
}

/**
 * The queue's totals since it was declared, failures spelled out: an always-failing handler
 * shows as delivered without acked, redelivered, then dead-lettered (or dropped, without a
 * dead-letter exchange).
 */
function totals(view: QueueView | undefined): HTMLElement {
  if (view === undefined) {
    return h(
      'p',
      { class: 'empty', 'data-testid': 'queue-totals' },
      'not in the latest reading yet',
    );
  }
  const { published, delivered, acked, redelivered, deadLettered, dropped } = view.totals;
  // The reasons in the order the server lists them.
  const reasons = Object.entries(deadLettered);
  return dataTable(
    'queue-totals',
    [
      'published',
      'delivered',
      'acked',
      'redelivered',
      ...reasons.map(([reason]) => `dead-lettered: ${reason}`),
      'dropped',
    ],
    [
      [published, delivered, acked, redelivered, ...reasons.map(([, count]) => count), dropped].map(
        figure,
      ),
    ],
  );
}

/** The live consumers: what each reads, holds unacked, and how long its lease has to run. */
function consumers(info: QueueInfo): HTMLElement {
  return dataTable(
    'consumers',
    ['name', 'ordered', 'partitions', 'unacked', 'lease ends in'],
    info.consumerDetails.map((c) => [
      c.name,
      c.ordered ? 'yes' : 'no',
      c.partitions.length === 0 ? '—' : c.partitions.join(', '),
      figure(c.unacked),
      duration(c.leaseRemainingMs),
    ]),
    'no live consumers',
  );
}

function partitions(info: QueueInfo): HTMLElement {
  return dataTable(
    'partitions',
    ['partition', 'ready', 'unacked', 'owner'],
    info.partitions.map((p) => [
      String(p.partition),
      figure(p.messages),
      figure(p.unacked),
      p.owner === undefined ? '—' : `${p.owner.consumer} (token ${p.owner.token})`,
    ]),
  );
}

function readyMessages(messages: readonly PeekedMessage[]): HTMLElement {
  return dataTable(
    'ready-messages',
    ['stream id', 'partition', 'message id', 'routing key', 'body'],
    messages.map((m) => [
      m.streamId,
      String(m.partition),
      'messageId' in m ? m.messageId : '(not a sluice message)',
      'messageId' in m ? m.routingKey : '',
      h('code', {}, body(m)),
    ]),
    'no ready messages',
  );
}

/** `n` ready messages, in words ("1 ready message", "3 ready messages"). */
function plural(n: number): string {
  return `${n} ready message${n === 1 ? '' : 's'}`;
}

/**
 * The dead-letter browser of a queue: its messages with their last death, one shown in full
 * on a click, and Replay and Purge behind a confirmation (unless the dashboard is read-only).
 */
function deadLetterBrowser(
  queue: string,
  ready: number,
  page: DeadLetterPage,
  readOnly: boolean,
  refresh: (notice: string) => void,
  notice: string | undefined,
): HTMLElement {
  const detail = h('pre', { class: 'detail', 'data-testid': 'dead-letter-detail', hidden: true });
  const status = h('p', { class: 'status', 'data-testid': 'action-status' }, notice ?? '');
  const show = async (id: string): Promise<void> => {
    detail.hidden = false;
    detail.textContent = JSON.stringify(
      await get(`queues/${segment(queue)}/dead-letters/${segment(id)}`),
      null,
      2,
    );
  };
  const rows = page.messages.map((m) => {
    const death = 'messageId' in m ? m.deathHistory?.deaths[0] : undefined;
    return [
      h(
        'button',
        {
          type: 'button',
          class: 'link',
          onclick: () => void show(m.streamId).catch(report(status)),
        },
        m.streamId,
      ),
      'messageId' in m ? m.messageId : '(not a sluice message)',
      death === undefined ? '—' : `${death.reason} in ${death.queue} ×${death.count}`,
      death?.lastError?.message ?? '',
    ];
  });
  const count = page.messages.length;
  const act = async (what: 'replay' | 'purge'): Promise<void> => {
    const question =
      what === 'replay'
        ? `Replay ${plural(ready)} of '${queue}' to the queues they died in?`
        : `Purge ${plural(ready)} of '${queue}'? They are deleted for good.`;
    if (!(await confirmAction(question, what === 'replay' ? 'Replay' : 'Purge'))) return;
    let outcome: string;
    if (what === 'replay') {
      const result = await post<ReplayResult>(`queues/${segment(queue)}/replay`);
      outcome = `replayed ${result.replayed}, skipped ${result.skipped}, failed ${result.failed}`;
    } else {
      const result = await post<{ purged: number }>(`queues/${segment(queue)}/purge`);
      outcome = `purged ${result.purged}`;
    }
    status.textContent = outcome;
    // The page drawn again keeps saying what the action did.
    refresh(outcome);
  };
  return h(
    'section',
    { 'data-testid': 'dead-letters' },
    h('h2', {}, 'Dead letters'),
    readOnly || count === 0
      ? null
      : h(
          'div',
          { class: 'actions' },
          h(
            'button',
            {
              type: 'button',
              'data-testid': 'replay',
              onclick: () => void act('replay').catch(report(status)),
            },
            'Replay…',
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'danger',
              'data-testid': 'purge',
              onclick: () => void act('purge').catch(report(status)),
            },
            'Purge…',
          ),
        ),
    status,
    dataTable(
      'dead-letter-list',
      ['stream id', 'message id', 'last death', 'last error'],
      rows,
      'no dead letters',
    ),
    page.next === undefined ? null : h('p', { class: 'empty' }, `more after ${page.next}`),
    detail,
  );
}

/** Shows a failed action's error in `status`. */
function report(status: HTMLElement): (error: unknown) => void {
  return (error) => {
    status.textContent = `error: ${error instanceof Error ? error.message : String(error)}`;
    status.classList.add('error');
  };
}

/**
 * A queue's page: counts, live consumers, totals, partitions with their owners, ready messages,
 * dead letters.
 */
export async function queuePage(
  queue: string,
  options: {
    /** The queue's row of the overview, for its lag and rates. */
    readonly view: QueueView | undefined;
    readonly deadLetterQueue: boolean;
    readonly readOnly: boolean;
    /** Draws the page again at once, showing `notice` (what an action did). */
    readonly refresh: (notice: string) => void;
    /** What the last action on this page did, shown until the page is left. */
    readonly notice: string | undefined;
  },
): Promise<HTMLElement> {
  const page = await get<QueuePage>(`queues/${segment(queue)}`);
  const deadLetters =
    options.deadLetterQueue && page.info.partitions.length === 1
      ? await get<DeadLetterPage>(`queues/${segment(queue)}/dead-letters?count=50`)
      : undefined;
  return h(
    'div',
    { 'data-testid': 'queue-page' },
    h('h1', {}, `Queue ${queue}`),
    counts(page.info, options.view),
    h('h2', {}, 'Consumers'),
    consumers(page.info),
    h('h2', {}, 'Totals'),
    totals(options.view),
    h('h2', {}, 'Partitions'),
    partitions(page.info),
    deadLetters === undefined
      ? h('section', {}, h('h2', {}, 'Ready messages'), readyMessages(page.messages))
      : deadLetterBrowser(
          queue,
          page.info.messages,
          deadLetters,
          options.readOnly,
          options.refresh,
          options.notice,
        ),
  );
}
