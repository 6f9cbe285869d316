/**
 * The sluice demo (`npm run demo`): a small order pipeline on a real Redis, told step by step.
 *
 * It finds a Redis (REDIS_URL, else 127.0.0.1:6379, else a redis-server it starts, else a
 * Testcontainers Redis), works in a fresh namespace `demo-<time>`, and at the end deletes that
 * namespace's keys (SCAN + UNLINK, never FLUSH) and stops whatever server it started.
 *
 * The pipeline: a topic exchange `orders` feeds `billing` and `shipping`; a headers exchange
 * `notifications` feeds `email` and `sms`; what `sms` rejects is dead-lettered through the
 * fanout exchange `dead-letters` into `notifications.dlq`. Each step is one function in `STEPS`;
 * a new feature gets a step of its own there.
 */
import { Redis } from 'ioredis';
import {
  deleteNamespaceKeys,
  findRedis,
  waitFor,
  type FoundRedis,
} from '../scripts/local-redis.js';
// The public API has no queue inspection yet; the last step reads the queues' streams through
// the key schema module, the one place that knows key names.
// In an application: `from 'sluice'`.
import {
  Sluice,
  UnroutableError,
  type Delivery,
  type PublishConfirm,
  type PublishOptions,
} from '../src/index.js';

interface Order {
  readonly orderId: number;
  readonly customer: string;
}

interface Notification {
  readonly to: string;
  readonly text: string;
}

/** What every step works with. */
interface Demo {
  readonly sluice: Sluice;
  readonly redis: Redis;
  readonly namespace: string;
  /** Messages stored per queue, counted from the publish confirms; consumers wait for these. */
  readonly stored: Map<string, number>;
}

interface Step {
  readonly title: string;
  run(demo: Demo): Promise<void>;
}

const QUEUES = ['billing', 'shipping', 'email', 'sms', 'notifications.dlq'] as const;
const CONSUME_TIMEOUT_MS = 15_000;

function say(line = ''): void {
  console.log(line);
}

function indent(line: string): void {
  say(`   ${line}`);
}

/** `billing 1732546000000-0, shipping 1732546000000-0`, or `(no queue)`. */
function describeTargets(confirm: PublishConfirm): string {
  if (confirm.targets.length === 0) return '(no queue)';
  return confirm.targets.map((target) => `${target.queue} ${target.streamId}`).join(', ');
}

function countStored(demo: Demo, confirm: PublishConfirm): void {
  for (const { queue } of confirm.targets) {
    demo.stored.set(queue, (demo.stored.get(queue) ?? 0) + 1);
  }
}

function deliveryState(msg: Delivery): string {
  return `redelivered: ${msg.redelivered}, deliveryCount: ${msg.deliveryCount}`;
}

async function declareTopology({ sluice }: Demo): Promise<void> {
  await sluice.declareExchange('orders', 'topic');
  await sluice.declareExchange('notifications', 'headers');
  await sluice.declareExchange('dead-letters', 'fanout');
  for (const queue of ['billing', 'shipping', 'email', 'notifications.dlq']) {
    await sluice.declareQueue(queue);
  }
  // What sms rejects goes to the dead-letter exchange, as in RabbitMQ.
  await sluice.declareQueue('sms', { deadLetterExchange: 'dead-letters' });
  await sluice.bindQueue('billing', 'orders', 'order.*');
  await sluice.bindQueue('shipping', 'orders', 'order.created');
  indent("topic exchange 'orders':   billing  <- order.*");
  indent('                           shipping <- order.created');

  await sluice.bindQueue('email', 'notifications', { 'x-match': 'all', channel: 'email' });
  await sluice.bindQueue('sms', 'notifications', {
    'x-match': 'any',
    channel: 'sms',
    urgent: true,
  });
  indent("headers exchange 'notifications':");
  indent('                           email <- x-match all: channel = "email"');
  indent('                           sms   <- x-match any: channel = "sms" or urgent = true');
  await sluice.bindQueue('notifications.dlq', 'dead-letters');
  indent("fanout exchange 'dead-letters': notifications.dlq (the dead-letter exchange of sms)");
}

async function publishOrders(demo: Demo): Promise<void> {
  const orders: [routingKey: string, order: Order][] = [
    ['order.created', { orderId: 1001, customer: 'ada' }],
    ['order.created', { orderId: 1002, customer: 'grace' }],
    ['order.paid', { orderId: 1001, customer: 'ada' }],
  ];
  for (const [routingKey, order] of orders) {
    const confirm = await demo.sluice.publish('orders', routingKey, order);
    countStored(demo, confirm);
    indent(`${routingKey.padEnd(13)} #${order.orderId} -> ${describeTargets(confirm)}`);
  }
}

async function publishNotifications(demo: Demo): Promise<void> {
  const notifications: [headers: PublishOptions['headers'], body: Notification][] = [
    [{ channel: 'email' }, { to: 'ada@example.com', text: 'Order 1001 confirmed' }],
    [{ channel: 'sms' }, { to: '+15550100', text: 'Order 1001 shipped' }],
    [
      { channel: 'email', urgent: true },
      { to: 'grace@example.com', text: 'Payment for order 1002 failed' },
    ],
    // The string 'true' is not the boolean true: headers match by type and value.
    [
      { channel: 'email', urgent: 'true' },
      { to: 'ada@example.com', text: 'Order 1001 paid' },
    ],
  ];
  // One round trip for all four, one confirm each.
  const confirms = await demo.sluice.publishBatch(
    notifications.map(([headers, body]) => ({
      exchange: 'notifications',
      routingKey: '',
      body,
      options: headers === undefined ? {} : { headers },
    })),
  );
  notifications.forEach(([headers], i) => {
    const confirm = confirms[i] as PublishConfirm;
    countStored(demo, confirm);
    indent(`${JSON.stringify(headers).padEnd(36)} -> ${describeTargets(confirm)}`);
  });
}

async function publishUnroutable({ sluice }: Demo): Promise<void> {
  try {
    await sluice.publish('orders', 'invoice.created', { invoiceId: 7 }, { mandatory: true });
    throw new Error('a mandatory publish that matches no queue should have been refused');
  } catch (error) {
    if (!(error instanceof UnroutableError)) throw error;
    indent(`mandatory:     invoice.created -> ${error.name} [${error.code}]: ${error.message}`);
  }
  const confirm = await sluice.publish('orders', 'invoice.created', { invoiceId: 7 });
  indent(`not mandatory: invoice.created -> resolves with ${confirm.targets.length} targets`);
}

async function consumeOrders(demo: Demo): Promise<void> {
  const billing = await demo.sluice.consume<Order>('billing', (msg) => {
    const what = `${msg.routingKey} #${msg.body.orderId}`;
    if (msg.body.orderId === 1002 && !msg.redelivered) {
      indent(`[billing]  ${what} (${deliveryState(msg)}): payment provider timed out,`);
      indent('           the handler throws, so sluice retries it after a backoff (about 1 s)');
      throw new Error('payment provider timed out');
    }
    indent(`[billing]  ${what} (${deliveryState(msg)}): charged, acked`);
  });
  const shipping = await demo.sluice.consume<Order>('shipping', (msg) => {
    indent(`[shipping] ${msg.routingKey} #${msg.body.orderId}: parcel booked, acked`);
  });
  await waitFor(
    () =>
      billing.stats.acked === demo.stored.get('billing') &&
      shipping.stats.acked === demo.stored.get('shipping'),
    { timeoutMs: CONSUME_TIMEOUT_MS, description: 'billing and shipping acking every order' },
  );
  await Promise.all([billing.close(), shipping.close()]);
  const { acked, delayed, handlerErrors } = billing.stats;
  indent(`billing:  ${acked} acked, ${delayed} retried later, ${handlerErrors} handler error`);
  indent(`shipping: ${shipping.stats.acked} acked`);
}

function isPhoneNumber(to: string): boolean {
  return /^\+[0-9]{6,15}$/u.test(to);
}

async function consumeNotifications(demo: Demo): Promise<void> {
  // Handler form: automatic acks.
  const email = await demo.sluice.consume<Notification>('email', (msg) => {
    indent(`[email] to ${msg.body.to}: "${msg.body.text}" sent, acked`);
  });

  // Iterator form: every delivery is settled by hand.
  let settled = 0;
  for await (const msg of demo.sluice.messages<Notification>('sms')) {
    if (isPhoneNumber(msg.body.to)) {
      await msg.ack();
      indent(`[sms]   to ${msg.body.to}: "${msg.body.text}" sent, ack()`);
    } else {
      await msg.reject();
      indent(`[sms]   to ${msg.body.to}: not a phone number, reject() -> dead-lettered`);
    }
    // Leaving the loop closes the iterator's consumer.
    if (++settled === demo.stored.get('sms')) break;
  }

  await waitFor(() => email.stats.acked === demo.stored.get('email'), {
    timeoutMs: CONSUME_TIMEOUT_MS,
    description: 'email acking every notification',
  });
  await email.close();
}

async function readDeadLetters(demo: Demo): Promise<void> {
  // reject() resolved once the message was in the outbox; the client routes it from there.
  const dlq = await demo.sluice.consume<Notification>('notifications.dlq', (msg) => {
    const death = msg.deathHistory?.deaths[0];
    const record =
      death === undefined
        ? 'no death record'
        : `reason ${death.reason}, from queue ${death.queue}, count ${death.count}, ` +
          `published to '${death.exchange}'`;
    indent(`[dlq]   to ${msg.body.to}: "${msg.body.text}"`);
    indent(`        ${record}; acked`);
  });
  await waitFor(() => dlq.stats.acked === 1, {
    timeoutMs: CONSUME_TIMEOUT_MS,
    description: 'the rejected sms in notifications.dlq',
  });
  await dlq.close();
}

async function checkQueuesEmpty({ sluice }: Demo): Promise<void> {
  const leftovers: string[] = [];
  for (const queue of QUEUES) {
    const info = await sluice.inspectQueue(queue);
    // Delayed retries and dead letters not yet routed count as waiting.
    const waiting = info.delayed + info.deadLetterBacklog;
    indent(
      `${queue.padEnd(17)} ${info.messages} messages, ${info.unacked} unacked, ${waiting} waiting`,
    );
    if (info.messages > 0 || info.unacked > 0 || waiting > 0) leftovers.push(queue);
  }
  if (leftovers.length > 0) throw new Error(`queues not empty: ${leftovers.join(', ')}`);
  indent('every queue is empty');
}

const STEPS: readonly Step[] = [
  { title: 'Declare exchanges, queues and bindings', run: declareTopology },
  { title: 'Publish orders with confirms (stream id per target queue)', run: publishOrders },
  { title: 'Publish notifications in one batch, routed by headers', run: publishNotifications },
  { title: 'A mandatory publish that no queue takes', run: publishUnroutable },
  { title: 'Consume orders with automatic acks', run: consumeOrders },
  {
    title: 'Consume notifications: email with automatic acks, sms with manual acks',
    run: consumeNotifications,
  },
  { title: 'Read the dead-letter queue', run: readDeadLetters },
  { title: 'Check that every queue is empty', run: checkQueuesEmpty },
];

const SOURCES: Record<FoundRedis['source'], string> = {
  env: 'from REDIS_URL',
  local: 'already running on port 6379',
  spawned: 'a redis-server started for this demo',
  container: 'a Testcontainers Redis started for this demo',
};

async function main(): Promise<void> {
  const found = await findRedis({ preferLocal6379: true });
  const redis = new Redis(found.url, { lazyConnect: true });
  // Failures also reach the demo as rejected commands; the event says why a connect failed.
  let connectionError: unknown;
  redis.on('error', (error) => (connectionError = error));
  try {
    await redis.connect().catch((error: unknown) => {
      const reason = String(connectionError ?? error);
      throw new Error(`cannot reach Redis at ${found.url}: ${reason}`, { cause: error });
    });
    const namespace = `demo-${Date.now()}`;
    // sluice adopts this client and never closes it; the demo closes it below.
    const sluice = await Sluice.connect({ redis, namespace });
    say(`sluice demo on ${found.url} (${SOURCES[found.source]})`);
    say(`${sluice.server.name} ${sluice.server.version}, namespace '${namespace}'`);
    try {
      const demo: Demo = { sluice, redis, namespace, stored: new Map() };
      for (const [i, step] of STEPS.entries()) {
        say();
        say(`${i + 1}. ${step.title}`);
        await step.run(demo);
      }
    } finally {
      await sluice.close();
      const deleted = await deleteNamespaceKeys(redis, namespace);
      say();
      say(`Closed sluice; deleted the ${deleted} keys of namespace '${namespace}'.`);
    }
  } finally {
    await redis.quit().catch(() => redis.disconnect());
    await found.stop();
  }
  if (found.source === 'spawned' || found.source === 'container') say('Stopped the server.');
  say('Done.');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
