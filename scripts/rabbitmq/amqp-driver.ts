/**
 * Plays broker-neutral scenario steps (test/support/scenarios.ts) on a real RabbitMQ through
 * amqplib. Logical names get a prefix unique to the run, so recordings never meet each other's
 * queues, and the prefix is taken out of everything observed.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type {
  ConsumerSink,
  ConsumerSpec,
  DeathObservation,
  DeathsObservation,
  DeathSummaryObservation,
  DeliveryObservation,
  Driver,
  QueueCounts,
  Received,
  Settlement,
  StepOf,
  Table,
  TableValue,
} from '../../test/support/scenarios.js';

/** Headers the broker writes itself; observed apart from the application's headers. */
const BROKER_HEADERS = new Set([
  'x-death',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-first-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-last-death-exchange',
  'x-delivery-count',
]);

/** A header field the broker writes as a long string; anything else is not worth recording. */
function text(value: unknown): string {
  if (typeof value !== 'string')
    throw new Error(`expected a string header field, got ${typeof value}`);
  return value;
}

/** A channel and whether the server has closed it (after an error, channels are single-use). */
interface TrackedChannel<C extends Channel> {
  readonly channel: C;
  closed: boolean;
}

/** A scenario's consumer: its own channel, so closing it is closing the channel. */
interface AmqpConsumer {
  readonly tracked: TrackedChannel<Channel>;
}

export class AmqpDriver implements Driver {
  private admin: TrackedChannel<Channel> | undefined;
  private publisher: TrackedChannel<ConfirmChannel> | undefined;
  private readonly returned = new Set<string>();
  private readonly consumers = new Map<string, AmqpConsumer>();
  /** Every queue and exchange a step may have created, deleted after the scenario. */
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();

  constructor(
    private readonly connection: ChannelModel,
    /** Prepended to every logical name but `''` and `amq.*`. */
    private readonly prefix: string,
  ) {}

  /** The broker's name for a logical queue or exchange name. */
  private name(logical: string): string {
    return logical === '' || logical.startsWith('amq.') ? logical : this.prefix + logical;
  }

  /** The logical name of something the broker reports. */
  private logical(name: string): string {
    return name.startsWith(this.prefix) ? name.slice(this.prefix.length) : name;
  }

  private track<C extends Channel>(channel: C): TrackedChannel<C> {
    const tracked = { channel, closed: false };
    // A channel error reaches the operation that caused it as a rejection; without a listener
    // the 'error' event would throw.
    channel.on('error', () => undefined);
    channel.on('close', () => (tracked.closed = true));
    return tracked;
  }

  /** The channel for declarations and counts, opened again after an error closed it. */
  private async adminChannel(): Promise<Channel> {
    if (this.admin === undefined || this.admin.closed) {
      this.admin = this.track(await this.connection.createChannel());
    }
    return this.admin.channel;
  }

  private async publisherChannel(): Promise<TrackedChannel<ConfirmChannel>> {
    if (this.publisher === undefined || this.publisher.closed) {
      const channel = await this.connection.createConfirmChannel();
      channel.on('return', (message: ConsumeMessage) => {
        this.returned.add(String(message.properties.messageId));
      });
      this.publisher = this.track(channel);
    }
    return this.publisher;
  }

  async declareExchange(step: StepOf<'declareExchange'>): Promise<void> {
    this.exchanges.add(step.exchange);
    await (
      await this.adminChannel()
    ).assertExchange(this.name(step.exchange), step.type, { durable: true });
  }

  async deleteExchange(step: StepOf<'deleteExchange'>): Promise<void> {
    await (
      await this.adminChannel()
    ).deleteExchange(this.name(step.exchange), { ifUnused: step.ifUnused ?? false });
  }

  async declareQueue(step: StepOf<'declareQueue'>): Promise<void> {
    this.queues.add(step.queue);
    const args: Record<string, TableValue> = { ...step.arguments };
    const dlx = args['x-dead-letter-exchange'];
    if (typeof dlx === 'string') {
      args['x-dead-letter-exchange'] = this.name(dlx);
      const key = args['x-dead-letter-routing-key'];
      // Through the default exchange, the dead-letter routing key is a queue name.
      if (dlx === '' && typeof key === 'string') args['x-dead-letter-routing-key'] = this.name(key);
    }
    await (
      await this.adminChannel()
    ).assertQueue(this.name(step.queue), { durable: true, arguments: args });
  }

  async deleteQueue(step: StepOf<'deleteQueue'>): Promise<void> {
    await (
      await this.adminChannel()
    ).deleteQueue(this.name(step.queue), {
      ifEmpty: step.ifEmpty ?? false,
      ifUnused: step.ifUnused ?? false,
    });
  }

  async inspectQueue(queue: string): Promise<QueueCounts> {
    const reply = await (await this.adminChannel()).checkQueue(this.name(queue));
    return { messages: reply.messageCount, consumers: reply.consumerCount };
  }

  async purgeQueue(queue: string): Promise<number> {
    return (await (await this.adminChannel()).purgeQueue(this.name(queue))).messageCount;
  }

  /** queue.bind's and queue.unbind's arguments. */
  private binding(
    step: StepOf<'bindQueue' | 'unbindQueue'>,
  ): [string, string, string, Table | undefined] {
    return [this.name(step.queue), this.name(step.exchange), step.routingKey ?? '', step.arguments];
  }

  async bindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void> {
    await (await this.adminChannel()).bindQueue(...this.binding(step));
  }

  async unbindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void> {
    await (await this.adminChannel()).unbindQueue(...this.binding(step));
  }

  async publish(step: StepOf<'publish'>): Promise<'ack' | 'nack' | 'returned'> {
    const tracked = await this.publisherChannel();
    const messageId = randomUUID();
    const routingKey = step.exchange === '' ? this.name(step.routingKey) : step.routingKey;
    let channelError: Error | undefined;
    const onError = (error: Error) => (channelError = error);
    tracked.channel.once('error', onError);
    try {
      return await new Promise<'ack' | 'nack' | 'returned'>((resolve, reject) => {
        tracked.channel.publish(
          this.name(step.exchange),
          routingKey,
          Buffer.from(step.body),
          {
            messageId,
            mandatory: step.mandatory ?? false,
            ...(step.headers ? { headers: step.headers } : {}),
            ...(step.expiration === undefined ? {} : { expiration: step.expiration }),
          },
          (error: unknown) => {
            // A channel closed by the server fails every unconfirmed publish: the close
            // (404 for a missing exchange) is the answer, not a nack.
            if (channelError !== undefined) reject(channelError);
            else if (error !== null && error !== undefined) resolve('nack');
            // basic.return comes before the basic.ack of the same message.
            else resolve(this.returned.delete(messageId) ? 'returned' : 'ack');
          },
        );
      });
    } finally {
      tracked.channel.off('error', onError);
    }
  }

  async consume({ consumer, queue, prefetch }: ConsumerSpec, sink: ConsumerSink): Promise<void> {
    const tracked = this.track(await this.connection.createChannel());
    this.consumers.set(consumer, { tracked });
    await tracked.channel.prefetch(prefetch);
    await tracked.channel.consume(this.name(queue), (message) => {
      // amqplib hands the server's basic.cancel over as a null message.
      if (message === null) sink.cancelled();
      else sink.delivered({ observation: this.observe(message), handle: message });
    });
  }

  async settle(consumer: string, received: Received, how: Settlement): Promise<void> {
    const channel = this.consumerOf(consumer).tracked.channel;
    const message = received.handle as ConsumeMessage;
    if (how === 'ack') channel.ack(message);
    else if (how === 'nack-requeue') channel.nack(message, false, true);
    else if (how === 'reject-requeue') channel.reject(message, true);
    else channel.reject(message, false);
    return Promise.resolve();
  }

  async closeConsumer(consumer: string): Promise<void> {
    const { tracked } = this.consumerOf(consumer);
    if (!tracked.closed) await tracked.channel.close();
  }

  private consumerOf(consumer: string): AmqpConsumer {
    const found = this.consumers.get(consumer);
    if (found === undefined) throw new Error(`no consumer '${consumer}'`);
    return found;
  }

  errorCode(error: unknown): number | string | undefined {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === 'number' ? code : undefined;
  }

  errorMessage(error: unknown): string {
    return (error instanceof Error ? error.message : String(error)).replaceAll(this.prefix, '');
  }

  /** A delivery as the scenarios compare it: names logical, times dropped. */
  private observe(message: ConsumeMessage): DeliveryObservation {
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const own: Record<string, TableValue> = {};
    for (const [key, value] of Object.entries(headers)) {
      if (!BROKER_HEADERS.has(key)) own[key] = value as TableValue;
    }
    const count = headers['x-delivery-count'];
    const deaths = this.deaths(headers);
    const expiration: unknown = message.properties.expiration;
    return {
      body: message.content.toString(),
      redelivered: message.fields.redelivered,
      exchange: this.logical(message.fields.exchange),
      routingKey: this.logical(message.fields.routingKey),
      ...(typeof count === 'number' ? { deliveryCount: count } : {}),
      ...(typeof expiration === 'string' ? { expiration } : {}),
      ...(Object.keys(own).length > 0 ? { headers: own } : {}),
      ...(deaths === undefined ? {} : { deaths }),
    };
  }

  private deaths(headers: Record<string, unknown>): DeathsObservation | undefined {
    const xDeath = headers['x-death'];
    if (!Array.isArray(xDeath)) return undefined;
    const records = (xDeath as Record<string, unknown>[]).map((record): DeathObservation => {
      const original = record['original-expiration'];
      return {
        queue: this.logical(text(record.queue)),
        reason: text(record.reason),
        count: Number(record.count),
        exchange: this.logical(text(record.exchange)),
        routingKeys: (record['routing-keys'] as unknown[]).map((key) => this.logical(text(key))),
        ...(original === undefined ? {} : { originalExpiration: text(original) }),
      };
    });
    const first = this.summary(headers, 'x-first-death');
    const last = this.summary(headers, 'x-last-death');
    return {
      records,
      ...(first === undefined ? {} : { first }),
      ...(last === undefined ? {} : { last }),
    };
  }

  private summary(
    headers: Record<string, unknown>,
    prefix: 'x-first-death' | 'x-last-death',
  ): DeathSummaryObservation | undefined {
    const queue = headers[`${prefix}-queue`];
    if (queue === undefined) return undefined;
    return {
      queue: this.logical(text(queue)),
      reason: text(headers[`${prefix}-reason`]),
      exchange: this.logical(text(headers[`${prefix}-exchange`])),
    };
  }

  /** Closes the scenario's channels and deletes everything it may have declared. */
  async dispose(): Promise<void> {
    for (const { tracked } of this.consumers.values()) {
      if (!tracked.closed) await tracked.channel.close().catch(() => undefined);
    }
    for (const queue of this.queues) {
      await (await this.adminChannel()).deleteQueue(this.name(queue)).catch(() => undefined);
    }
    for (const exchange of this.exchanges) {
      // Never the broker's own exchanges: they are shared, not ours.
      if (exchange === '' || exchange.startsWith('amq.')) continue;
      await (await this.adminChannel()).deleteExchange(this.name(exchange)).catch(() => undefined);
    }
    for (const tracked of [this.admin, this.publisher]) {
      if (tracked !== undefined && !tracked.closed) await tracked.channel.close();
    }
  }
}
