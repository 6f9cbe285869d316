/**
 * The scenarios scripts/record-rabbitmq.ts plays against a real broker. Each one asks one
 * question of RabbitMQ that sluice users rely on (issue 9, "RabbitMQ semantics"); its steps are
 * broker-neutral (test/support/scenarios.ts) so that the replay test can play the same steps
 * on sluice. The answers are not written here: they are what the broker does.
 */
import type { SettlePolicy, Step, Table } from '../../test/support/scenarios.js';

/** A scenario before recording. */
export interface ScenarioDefinition {
  readonly name: string;
  readonly area: string;
  readonly question: string;
  readonly steps: readonly Step[];
}

/** Long enough for a broker on a busy two-core machine; only waits that time out pay it. */
const WAIT_MS = 3000;
/** A queue TTL short enough to wait past in a test, long enough to see redeliveries first. */
const TTL_MS = 500;

/** `dlx` (fanout) feeding `dlq`: where the scenarios' dead letters are observed. */
function deadLetterQueue(dlx = 'dlx', dlq = 'dlq'): Step[] {
  return [
    { op: 'declareExchange', exchange: dlx, type: 'fanout' },
    { op: 'declareQueue', queue: dlq },
    { op: 'bindQueue', queue: dlq, exchange: dlx },
  ];
}

type PublishStep = Extract<Step, { op: 'publish' }>;

function publish(queue: string, body: string, extra: Partial<PublishStep> = {}): Step {
  return { op: 'publish', exchange: '', routingKey: queue, body, ...extra };
}

function publishAll(queue: string, bodies: readonly string[]): Step[] {
  return bodies.map((body) => publish(queue, body));
}

function consume(consumer: string, queue: string, prefetch: number, settle: SettlePolicy): Step {
  return { op: 'consume', consumer, queue, prefetch, settle };
}

function awaitDeliveries(consumer: string, count: number, label?: string): Step {
  return {
    op: 'awaitDeliveries',
    consumer,
    count,
    timeoutMs: WAIT_MS,
    ...(label ? { label } : {}),
  };
}

function take(queue: string, count: number, label?: string): Step {
  return { op: 'take', queue, count, timeoutMs: WAIT_MS, ...(label ? { label } : {}) };
}

function awaitMessageCount(queue: string, messages: number, label?: string): Step {
  return {
    op: 'awaitMessageCount',
    queue,
    messages,
    timeoutMs: WAIT_MS,
    ...(label ? { label } : {}),
  };
}

const quorum = (args: Table = {}): Table => ({ 'x-queue-type': 'quorum', ...args });

function deliveryLimit(limit: number): ScenarioDefinition {
  return {
    name: `quorum queue with x-delivery-limit ${limit}`,
    area: 'delivery limit',
    question: `How many deliveries does x-delivery-limit ${limit} allow before dead-lettering with reason delivery_limit?`,
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: quorum({ 'x-delivery-limit': limit, 'x-dead-letter-exchange': 'dlx' }),
      },
      consume('c1', 'work', 1, 'nack-requeue'),
      publish('work', 'm1'),
      awaitMessageCount('dlq', 1, 'dead-lettered'),
      { op: 'deliveries', consumer: 'c1', label: 'deliveries' },
      take('dlq', 1, 'dead letter'),
    ],
  };
}

function ttlAcrossRequeues(queueType: 'classic' | 'quorum'): ScenarioDefinition {
  const args: Table = { 'x-message-ttl': TTL_MS, 'x-dead-letter-exchange': 'dlx' };
  return {
    name: `${queueType} queue TTL across requeues`,
    area: 'queue TTL',
    question:
      'A message nacked with requeue=true over and over: does x-message-ttl restart at each ' +
      'requeue, or does the message expire while it is being redelivered?',
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: queueType === 'quorum' ? quorum(args) : args,
      },
      consume('c1', 'work', 1, 'nack-requeue'),
      publish('work', 'm1'),
      awaitDeliveries('c1', 3, 'redelivered'),
      awaitMessageCount('dlq', 1, 'expired while requeued'),
      take('dlq', 1, 'dead letter'),
    ],
  };
}

/** Queue `work` of `queueType`, holding `bodies` in that order. */
function workQueueHolding(queueType: 'classic' | 'quorum', bodies: readonly string[]): Step[] {
  return [
    {
      op: 'declareQueue',
      queue: 'work',
      ...(queueType === 'quorum' ? { arguments: quorum() } : {}),
    },
    ...publishAll('work', bodies),
  ];
}

function closedWithoutAck(queueType: 'classic' | 'quorum'): ScenarioDefinition {
  return {
    name: `${queueType} queue: a consumer closes its channel without acking`,
    area: 'consumer that goes away',
    question:
      'A consumer holds m1 and m2 unacked while m3 and m4 wait; it closes its channel. In which ' +
      'order does the next consumer get them?',
    steps: [
      ...workQueueHolding(queueType, ['m1', 'm2', 'm3', 'm4']),
      consume('c1', 'work', 2, 'manual'),
      awaitDeliveries('c1', 2),
      { op: 'closeConsumer', consumer: 'c1' },
      consume('c2', 'work', 10, 'ack'),
      awaitDeliveries('c2', 4, 'order after close'),
    ],
  };
}

function requeuePosition(
  queueType: 'classic' | 'quorum',
  method: 'nack' | 'reject',
): ScenarioDefinition {
  return {
    name: `${queueType} queue: ${method} with requeue`,
    area: 'requeue position',
    question:
      `With m1, m2, m3 in the queue and prefetch 1, m1 is ${method}ed with requeue=true: is it ` +
      'delivered again before m2 (head) or after m3 (tail)?',
    steps: [
      ...workQueueHolding(queueType, ['m1', 'm2', 'm3']),
      consume('c1', 'work', 1, 'manual'),
      awaitDeliveries('c1', 1),
      { op: method, consumer: 'c1', body: 'm1', requeue: true },
      { op: 'setPolicy', consumer: 'c1', settle: 'ack' },
      awaitDeliveries('c1', 3, 'order after requeue'),
    ],
  };
}

function zeroTtl(kind: 'queue' | 'message', waitingConsumer: boolean): ScenarioDefinition {
  const ttl: Table = kind === 'queue' ? { 'x-message-ttl': 0 } : {};
  const expiration = kind === 'message' ? { expiration: '0' } : {};
  const setting = kind === 'queue' ? 'x-message-ttl 0' : "expiration '0'";
  const common: Step[] = [
    ...deadLetterQueue(),
    {
      op: 'declareQueue',
      queue: 'work',
      arguments: { ...ttl, 'x-dead-letter-exchange': 'dlx' },
      label: 'declare',
    },
  ];
  return {
    name: `${setting} ${waitingConsumer ? 'with' : 'without'} a waiting consumer`,
    area: 'zero limits',
    question: `Is a message with ${setting} delivered to a consumer that waits, or dead-lettered (and when no consumer waits)?`,
    steps: waitingConsumer
      ? [
          ...common,
          { ...consume('c1', 'work', 10, 'manual'), label: 'consume' },
          publish('work', 'm1', { ...expiration, label: 'publish' }),
          awaitDeliveries('c1', 1, 'delivered'),
          { op: 'ack', consumer: 'c1', body: 'm1', label: 'ack' },
          { op: 'inspectQueue', queue: 'dlq', label: 'not dead-lettered' },
        ]
      : [
          ...common,
          publish('work', 'm1', { ...expiration, label: 'publish' }),
          awaitMessageCount('dlq', 1, 'dead-lettered'),
          { op: 'inspectQueue', queue: 'work', label: 'queue' },
          take('dlq', 1, 'dead letter'),
        ],
  };
}

function zeroMaxLength(overflow: 'drop-head' | 'reject-publish'): ScenarioDefinition {
  return {
    name: `x-max-length 0 with overflow ${overflow}`,
    area: 'zero limits',
    question: `What does a publish to a queue with x-max-length 0 and ${overflow} do?`,
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: { 'x-max-length': 0, 'x-overflow': overflow, 'x-dead-letter-exchange': 'dlx' },
        label: 'declare',
      },
      publish('work', 'm1', { label: 'publish' }),
      ...(overflow === 'drop-head'
        ? [awaitMessageCount('dlq', 1, 'dead-lettered'), take('dlq', 1, 'dead letter')]
        : [{ op: 'inspectQueue', queue: 'dlq', label: 'not dead-lettered' } as const]),
      { op: 'inspectQueue', queue: 'work', label: 'queue' },
    ],
  };
}

function headersRouting(
  name: string,
  question: string,
  binding: Step,
  messages: Table[],
): ScenarioDefinition {
  return {
    name,
    area: 'headers exchange',
    question,
    steps: [
      { op: 'declareExchange', exchange: 'hx', type: 'headers' },
      { op: 'declareQueue', queue: 'matched' },
      binding,
      ...messages.map((headers, i): Step => ({
        op: 'publish',
        exchange: 'hx',
        routingKey: 'k',
        body: `m${i + 1}`,
        headers,
        mandatory: true,
        label: `headers ${JSON.stringify(headers)}`,
      })),
    ],
  };
}

/**
 * m1 carries an expiration and dies twice: in q1 (`firstDeath`: rejected by a consumer, or
 * expired with none), then rejected in q2. Which x-death records keep original-expiration?
 */
function originalExpiration(firstDeath: 'rejected' | 'expired'): ScenarioDefinition {
  return {
    name: `original-expiration after ${firstDeath} then rejected`,
    area: 'death records',
    question:
      `A message with an expiration dies in q1 (${firstDeath}), then is rejected in q2: ` +
      'which x-death records carry original-expiration, and does the dead letter keep its expiration?',
    steps: [
      ...deadLetterQueue('dlx2', 'dlq'),
      { op: 'declareExchange', exchange: 'dlx1', type: 'fanout' },
      { op: 'declareQueue', queue: 'q2', arguments: { 'x-dead-letter-exchange': 'dlx2' } },
      { op: 'bindQueue', queue: 'q2', exchange: 'dlx1' },
      { op: 'declareQueue', queue: 'q1', arguments: { 'x-dead-letter-exchange': 'dlx1' } },
      ...(firstDeath === 'rejected'
        ? [
            publish('q1', 'm1', { expiration: '60000' }),
            consume('c1', 'q1', 1, 'reject'),
            awaitDeliveries('c1', 1, 'first delivery'),
          ]
        : [publish('q1', 'm1', { expiration: String(TTL_MS) })]),
      consume('c2', 'q2', 1, 'reject'),
      awaitDeliveries('c2', 1, 'after first death'),
      take('dlq', 1, 'after second death'),
    ],
  };
}

const PREDECLARED: readonly { exchange: string; routingKey: string; arguments?: Table }[] = [
  { exchange: 'amq.direct', routingKey: 'k' },
  { exchange: 'amq.topic', routingKey: 'k.#' },
  { exchange: 'amq.fanout', routingKey: '' },
  { exchange: 'amq.headers', routingKey: '', arguments: { 'x-match': 'all', h: 1 } },
];

/** Every scenario, in the order the fixture lists them. */
export const SCENARIOS: readonly ScenarioDefinition[] = [
  deliveryLimit(0),
  deliveryLimit(1),
  deliveryLimit(2),
  ttlAcrossRequeues('classic'),
  ttlAcrossRequeues('quorum'),
  {
    name: 'queue TTL without a consumer (delay queue)',
    area: 'queue TTL',
    question:
      'Are messages of a queue with x-message-ttl and a DLX dead-lettered (reason expired) ' +
      'when no consumer ever reads the queue?',
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'delay',
        arguments: { 'x-message-ttl': TTL_MS, 'x-dead-letter-exchange': 'dlx' },
      },
      ...publishAll('delay', ['m1', 'm2']),
      awaitMessageCount('dlq', 2, 'expired without consumer'),
      awaitMessageCount('delay', 0, 'queue emptied'),
      take('dlq', 2, 'dead letters'),
    ],
  },
  {
    name: 'per-message expiration without a consumer',
    area: 'queue TTL',
    question: 'Is a message with an expiration dead-lettered when no consumer reads its queue?',
    steps: [
      ...deadLetterQueue(),
      { op: 'declareQueue', queue: 'delay', arguments: { 'x-dead-letter-exchange': 'dlx' } },
      publish('delay', 'm1', { expiration: String(TTL_MS) }),
      awaitMessageCount('dlq', 1, 'expired without consumer'),
      take('dlq', 1, 'dead letter'),
    ],
  },
  closedWithoutAck('classic'),
  closedWithoutAck('quorum'),
  requeuePosition('classic', 'nack'),
  requeuePosition('quorum', 'nack'),
  requeuePosition('quorum', 'reject'),
  {
    name: 'queue.purge with an unacked message',
    area: 'consumer that goes away',
    question:
      'Does queue.purge remove only ready messages, leaving the unacked one to its consumer?',
    steps: [
      ...workQueueHolding('classic', ['m1', 'm2', 'm3']),
      consume('c1', 'work', 1, 'manual'),
      awaitDeliveries('c1', 1),
      { op: 'purgeQueue', queue: 'work', label: 'purge' },
      { op: 'inspectQueue', queue: 'work', label: 'after purge' },
      { op: 'ack', consumer: 'c1', body: 'm1', label: 'ack after purge' },
      { op: 'inspectQueue', queue: 'work' },
    ],
  },
  {
    name: 'consuming from a queue that does not exist',
    area: 'consumer that goes away',
    question: 'What does basic.consume on a missing queue answer?',
    steps: [consume('c1', 'missing', 1, 'ack')],
  },
  {
    name: 'a consumer of a queue that is deleted',
    area: 'deleted queue',
    question: 'What happens to a consumer when its queue is deleted, and to the queue?',
    steps: [
      { op: 'declareQueue', queue: 'work' },
      consume('c1', 'work', 10, 'ack'),
      publish('work', 'm1'),
      awaitDeliveries('c1', 1),
      { op: 'deleteQueue', queue: 'work' },
      { op: 'awaitCancelled', consumer: 'c1', timeoutMs: WAIT_MS, label: 'cancelled' },
      { op: 'inspectQueue', queue: 'work', label: 'queue gone' },
    ],
  },
  {
    name: 'a cancelled consumer and a re-declared queue of the same name',
    area: 'deleted queue',
    question:
      'After its queue was deleted and declared again, does the old consumer take messages of ' +
      'the new queue?',
    steps: [
      { op: 'declareQueue', queue: 'work' },
      consume('c1', 'work', 10, 'ack'),
      { op: 'deleteQueue', queue: 'work' },
      { op: 'awaitCancelled', consumer: 'c1', timeoutMs: WAIT_MS, label: 'cancelled' },
      { op: 'declareQueue', queue: 'work' },
      publish('work', 'm1'),
      awaitMessageCount('work', 1, 'left for a new consumer'),
      { op: 'deliveries', consumer: 'c1', label: 'old consumer' },
      take('work', 1, 'new consumer'),
    ],
  },
  {
    name: 'predeclared amq.* exchanges',
    area: 'predeclared exchanges',
    question:
      'Do amq.direct, amq.topic, amq.fanout and amq.headers exist, route, and may they be declared again?',
    steps: [
      { op: 'declareQueue', queue: 'q' },
      ...PREDECLARED.map((p): Step => ({
        op: 'bindQueue',
        queue: 'q',
        exchange: p.exchange,
        routingKey: p.routingKey,
        ...(p.arguments ? { arguments: p.arguments } : {}),
        label: `bind to ${p.exchange}`,
      })),
      ...(
        [
          { exchange: 'amq.direct', routingKey: 'k', body: 'direct' },
          { exchange: 'amq.topic', routingKey: 'k.x', body: 'topic' },
          { exchange: 'amq.fanout', routingKey: 'any', body: 'fanout' },
          { exchange: 'amq.headers', routingKey: '', body: 'headers', headers: { h: 1 } },
        ] as const
      ).map((p): Step => ({
        op: 'publish',
        ...p,
        mandatory: true,
        label: `publish to ${p.exchange}`,
      })),
      take('q', 4, 'routed'),
      {
        op: 'declareExchange',
        exchange: 'amq.direct',
        type: 'direct',
        label: 'declare amq.direct',
      },
      { op: 'declareExchange', exchange: 'amq.topic', type: 'topic', label: 'declare amq.topic' },
    ],
  },
  {
    name: 'declaring an exchange named amq.x',
    area: 'predeclared exchanges',
    question: 'May a client declare a new exchange with the reserved prefix amq.?',
    steps: [
      { op: 'declareExchange', exchange: 'amq.x', type: 'direct' },
      { op: 'declareExchange', exchange: 'amq.direct', type: 'fanout', label: 'other type' },
    ],
  },
  {
    name: 'queue.delete if-empty with only unacked messages',
    area: 'delete conditions',
    question: 'Does queue.delete with if-empty refuse a queue whose only messages are unacked?',
    steps: [
      { op: 'declareQueue', queue: 'work' },
      publish('work', 'm1'),
      consume('c1', 'work', 10, 'manual'),
      awaitDeliveries('c1', 1),
      { op: 'inspectQueue', queue: 'work', label: 'counts' },
      { op: 'deleteQueue', queue: 'work', ifEmpty: true, label: 'delete if-empty' },
      { op: 'inspectQueue', queue: 'work', label: 'after delete' },
    ],
  },
  {
    name: 'queue.delete if-empty with ready messages, and if-unused with a consumer',
    area: 'delete conditions',
    question: 'Are if-empty and if-unused enforced on ready messages and consumers?',
    steps: [
      { op: 'declareQueue', queue: 'work' },
      publish('work', 'm1'),
      { op: 'deleteQueue', queue: 'work', ifEmpty: true, label: 'if-empty' },
      { op: 'declareQueue', queue: 'other' },
      consume('c1', 'other', 10, 'ack'),
      { op: 'deleteQueue', queue: 'other', ifUnused: true, label: 'if-unused' },
      { op: 'inspectQueue', queue: 'work' },
      { op: 'inspectQueue', queue: 'other' },
    ],
  },
  {
    name: 'exchange.delete if-unused with a binding, and deleting what does not exist',
    area: 'delete conditions',
    question:
      'Is exchange.delete if-unused refused while bound; is deleting a missing exchange or queue an error?',
    steps: [
      { op: 'declareExchange', exchange: 'ex', type: 'direct' },
      { op: 'declareQueue', queue: 'q' },
      { op: 'bindQueue', queue: 'q', exchange: 'ex', routingKey: 'k' },
      { op: 'deleteExchange', exchange: 'ex', ifUnused: true, label: 'if-unused' },
      { op: 'deleteExchange', exchange: 'missing', label: 'missing exchange' },
      { op: 'deleteQueue', queue: 'missing', label: 'missing queue' },
    ],
  },
  {
    name: "exchange.declare('') and exchange.delete('')",
    area: 'default exchange',
    question: 'May a client declare, delete, bind to or unbind from the default exchange?',
    steps: [
      { op: 'declareQueue', queue: 'q' },
      { op: 'declareExchange', exchange: '', type: 'direct', label: 'declare' },
      { op: 'deleteExchange', exchange: '', label: 'delete' },
      { op: 'bindQueue', queue: 'q', exchange: '', routingKey: 'k', label: 'bind' },
      { op: 'unbindQueue', queue: 'q', exchange: '', routingKey: 'q', label: 'unbind' },
      publish('q', 'm1'),
      { op: 'inspectQueue', queue: 'q' },
    ],
  },
  {
    name: 'queue.unbind from an exchange that does not exist',
    area: 'bindings',
    question: 'Is unbinding from a missing exchange (or a missing binding) an error?',
    steps: [
      { op: 'declareQueue', queue: 'q' },
      {
        op: 'unbindQueue',
        queue: 'q',
        exchange: 'missing',
        routingKey: 'k',
        label: 'missing exchange',
      },
      { op: 'declareExchange', exchange: 'ex', type: 'direct' },
      { op: 'unbindQueue', queue: 'q', exchange: 'ex', routingKey: 'k', label: 'missing binding' },
      {
        op: 'unbindQueue',
        queue: 'missing',
        exchange: 'ex',
        routingKey: 'k',
        label: 'missing queue',
      },
    ],
  },
  {
    name: 'publishing to a missing exchange, and a mandatory publish that routes nowhere',
    area: 'bindings',
    question:
      'What does a publisher see for a missing exchange and for an unroutable mandatory message?',
    steps: [
      {
        op: 'publish',
        exchange: 'missing',
        routingKey: 'k',
        body: 'm1',
        label: 'missing exchange',
      },
      { op: 'declareExchange', exchange: 'ex', type: 'direct' },
      {
        op: 'publish',
        exchange: 'ex',
        routingKey: 'k',
        body: 'm2',
        mandatory: true,
        label: 'unroutable',
      },
      { op: 'publish', exchange: 'ex', routingKey: 'k', body: 'm3', label: 'dropped' },
    ],
  },
  {
    name: 'declaring a queue again with other arguments',
    area: 'bindings',
    question:
      'Is re-declaring a queue with different arguments refused, and with the same ones accepted?',
    steps: [
      { op: 'declareQueue', queue: 'q', arguments: { 'x-message-ttl': 60000 } },
      { op: 'declareQueue', queue: 'q', arguments: { 'x-message-ttl': 60000 }, label: 'same' },
      { op: 'declareQueue', queue: 'q', arguments: { 'x-message-ttl': 1000 }, label: 'other' },
      { op: 'declareExchange', exchange: 'ex', type: 'direct' },
      { op: 'declareExchange', exchange: 'ex', type: 'fanout', label: 'other exchange type' },
    ],
  },
  zeroTtl('queue', true),
  zeroTtl('queue', false),
  zeroTtl('message', true),
  zeroTtl('message', false),
  zeroMaxLength('drop-head'),
  zeroMaxLength('reject-publish'),
  {
    name: 'x-max-length 1 with overflow drop-head',
    area: 'length limit',
    question:
      'Is the oldest message dead-lettered with reason maxlen when a full drop-head queue gets another?',
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: {
          'x-max-length': 1,
          'x-overflow': 'drop-head',
          'x-dead-letter-exchange': 'dlx',
        },
      },
      ...publishAll('work', ['m1', 'm2']),
      awaitMessageCount('dlq', 1),
      take('dlq', 1, 'dead letter'),
      take('work', 1, 'kept'),
    ],
  },
  {
    name: 'x-max-length 1 with overflow reject-publish-dlx',
    area: 'length limit',
    question: 'Is a message refused by a full reject-publish-dlx queue nacked and dead-lettered?',
    steps: [
      ...deadLetterQueue(),
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: {
          'x-max-length': 1,
          'x-overflow': 'reject-publish-dlx',
          'x-dead-letter-exchange': 'dlx',
        },
      },
      publish('work', 'm1'),
      publish('work', 'm2', { label: 'refused' }),
      awaitMessageCount('dlq', 1),
      take('dlq', 1, 'dead letter'),
      { op: 'inspectQueue', queue: 'work' },
    ],
  },
  {
    name: 'reject-publish on a fanout with one full queue',
    area: 'length limit',
    question:
      'A fanout routes to a full reject-publish queue and to an unbounded one: is the publish ' +
      'nacked, and is the message stored in the other queue?',
    steps: [
      { op: 'declareExchange', exchange: 'fx', type: 'fanout' },
      {
        op: 'declareQueue',
        queue: 'bounded',
        arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
      },
      { op: 'declareQueue', queue: 'unbounded' },
      { op: 'bindQueue', queue: 'bounded', exchange: 'fx' },
      { op: 'bindQueue', queue: 'unbounded', exchange: 'fx' },
      { op: 'publish', exchange: 'fx', routingKey: '', body: 'm1' },
      { op: 'publish', exchange: 'fx', routingKey: '', body: 'm2', label: 'publish to full' },
      { op: 'inspectQueue', queue: 'bounded' },
      { op: 'inspectQueue', queue: 'unbounded', label: 'other queue' },
    ],
  },
  headersRouting(
    'headers binding with a null-valued argument',
    "Does a binding { 'x-match': 'all', a: null } match on the presence of a, or on a null value?",
    {
      op: 'bindQueue',
      queue: 'matched',
      exchange: 'hx',
      arguments: { 'x-match': 'all', a: null },
      label: 'bind',
    },
    [{ a: 'x' }, { a: 1 }, { a: null }, {}, { b: 'x' }],
  ),
  headersRouting(
    'headers binding with a routing key and no arguments',
    'Does a headers binding made with a plain binding key (no arguments) match every message?',
    { op: 'bindQueue', queue: 'matched', exchange: 'hx', routingKey: 'some-key', label: 'bind' },
    [{}, { a: 'x' }],
  ),
  headersRouting(
    'headers binding whose arguments have no x-match',
    'Does a headers binding without x-match behave as x-match all?',
    { op: 'bindQueue', queue: 'matched', exchange: 'hx', arguments: { a: 1, b: 'x' } },
    [{ a: 1, b: 'x' }, { a: 1 }, { a: 1, b: 'x', c: true }],
  ),
  originalExpiration('rejected'),
  originalExpiration('expired'),
  {
    name: 'x-death after rejected and requeued through a DLX',
    area: 'death records',
    question:
      'A queue whose DLX routes back to itself; its consumer rejects a message twice: how do ' +
      'the x-death records grow?',
    steps: [
      { op: 'declareExchange', exchange: 'dlx', type: 'fanout' },
      { op: 'declareQueue', queue: 'work', arguments: { 'x-dead-letter-exchange': 'dlx' } },
      { op: 'bindQueue', queue: 'work', exchange: 'dlx' },
      publish('work', 'm1'),
      consume('c1', 'work', 1, 'manual'),
      awaitDeliveries('c1', 1, 'first delivery'),
      { op: 'reject', consumer: 'c1', body: 'm1', requeue: false },
      awaitDeliveries('c1', 1, 'after one death'),
      { op: 'reject', consumer: 'c1', body: 'm1', requeue: false },
      awaitDeliveries('c1', 1, 'after two deaths'),
      { op: 'ack', consumer: 'c1', body: 'm1' },
    ],
  },
  {
    name: 'dead-letter routing key',
    area: 'death records',
    question:
      'With x-dead-letter-routing-key, which routing key does the dead letter get, and which ' +
      'does its x-death record?',
    steps: [
      { op: 'declareExchange', exchange: 'ex', type: 'direct' },
      { op: 'declareExchange', exchange: 'dlx', type: 'direct' },
      { op: 'declareQueue', queue: 'parking' },
      { op: 'bindQueue', queue: 'parking', exchange: 'dlx', routingKey: 'parked' },
      {
        op: 'declareQueue',
        queue: 'work',
        arguments: { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'parked' },
      },
      { op: 'bindQueue', queue: 'work', exchange: 'ex', routingKey: 'k1' },
      {
        op: 'publish',
        exchange: 'ex',
        routingKey: 'k1',
        body: 'm1',
        headers: { tenant: 'acme' },
      },
      consume('c1', 'work', 1, 'reject'),
      take('parking', 1, 'dead letter'),
    ],
  },
];
