/**
 * Plays broker-neutral scenario steps (./scenarios.ts) on sluice, translating each AMQP
 * argument and method to the sluice call a user porting from RabbitMQ would write. Where the
 * translation is not one-to-one, the comment says which doc line it follows. A fresh namespace
 * isolates a scenario, so logical names are used as they are.
 */
import {
  QueueFullError,
  SluiceError,
  UnroutableError,
  type BindingArguments,
  type Consumer,
  type DeathHistory,
  type Delivery,
  type Headers,
  type QueueOptions,
  type Sluice,
} from '../../src/index.js';
import type {
  ConsumerSink,
  ConsumerSpec,
  DeliveryObservation,
  DeathsObservation,
  Driver,
  QueueCounts,
  Received,
  Settlement,
  StepOf,
  Table,
} from './scenarios.js';

/**
 * RabbitMQ requeues the deliveries of a closed channel at once; sluice gives them back when
 * their lease lapses, after the queue's `ackTimeoutMs` (docs/reliability.md, "Shutting down").
 * A short one lets the replay see where they come back instead of waiting 30 s for them.
 */
const ACK_TIMEOUT_MS = 1000;

/** AMQP reply codes of the sluice errors that have one (src/errors: "RabbitMQ's 404" etc.). */
const REPLY_CODES: Partial<Record<SluiceError['code'], number>> = {
  NOT_FOUND: 404,
  PRECONDITION_FAILED: 406,
  ACCESS_REFUSED: 403,
};

/** What a received sluice delivery carries for a later settlement. */
interface Handle {
  readonly delivery: Delivery<unknown>;
  /** Ends the handler run; called once the delivery is settled, so nothing is auto-acked. */
  readonly release: () => void;
}

/**
 * The sluice options of AMQP queue arguments. Without x-delivery-limit the recorded broker
 * (RabbitMQ 3.10) redelivers without limit, where sluice defaults to 21 deliveries (RabbitMQ
 * 4.0's default for quorum queues, docs/reliability.md): a port that relies on it writes
 * `maxDeliveries: 'unlimited'`.
 */
function queueOptions(args: Table = {}): QueueOptions {
  const options: Record<string, unknown> = {
    ackTimeoutMs: ACK_TIMEOUT_MS,
    maxDeliveries: 'unlimited',
  };
  for (const [key, value] of Object.entries(args)) {
    switch (key) {
      case 'x-queue-type':
        // sluice has one kind of queue; the type only decides what x-delivery-count shows.
        break;
      case 'x-dead-letter-exchange':
        options.deadLetterExchange = value;
        break;
      case 'x-dead-letter-routing-key':
        options.deadLetterRoutingKey = value;
        break;
      case 'x-message-ttl':
        options.messageTtlMs = value;
        break;
      case 'x-max-length':
        options.maxLength = value;
        break;
      case 'x-overflow':
        options.overflow = value;
        break;
      case 'x-delivery-limit':
        // x-delivery-limit counts redeliveries; maxDeliveries counts deliveries ("How many
        // attempts a message gets", docs/reliability.md), so limit N is N + 1 attempts.
        options.maxDeliveries = typeof value === 'number' ? value + 1 : value;
        break;
      default:
        throw new Error(`scenario: no sluice equivalent of queue argument '${key}'`);
    }
  }
  return options;
}

/** A death history as the broker's x-death headers show it. */
function deathsOf(history: DeathHistory): DeathsObservation {
  return {
    records: history.deaths.map((death) => ({
      queue: death.queue,
      reason: death.reason,
      count: death.count,
      exchange: death.exchange,
      routingKeys: death.routingKeys,
      ...(death.originalExpirationMs === undefined
        ? {}
        : { originalExpiration: String(death.originalExpirationMs) }),
    })),
    // The recorded broker writes x-first-death-* but no x-last-death-* headers: sluice's
    // `last` has nothing to be compared with.
    first: history.first,
  };
}

export class SluiceDriver implements Driver {
  private readonly consumers = new Map<string, Consumer<unknown>>();
  /** Queues declared as quorum queues: their deliveries show a delivery count. */
  private readonly quorumQueues = new Set<string>();

  constructor(private readonly sluice: Sluice) {}

  async declareExchange(step: StepOf<'declareExchange'>): Promise<void> {
    await this.sluice.declareExchange(step.exchange, step.type);
  }

  async deleteExchange(step: StepOf<'deleteExchange'>): Promise<void> {
    await this.sluice.deleteExchange(
      step.exchange,
      step.ifUnused === undefined ? {} : { ifUnused: step.ifUnused },
    );
  }

  async declareQueue(step: StepOf<'declareQueue'>): Promise<void> {
    await this.sluice.declareQueue(step.queue, queueOptions(step.arguments));
    if (step.arguments?.['x-queue-type'] === 'quorum') this.quorumQueues.add(step.queue);
  }

  async deleteQueue(step: StepOf<'deleteQueue'>): Promise<void> {
    await this.sluice.deleteQueue(step.queue, {
      ...(step.ifEmpty === undefined ? {} : { ifEmpty: step.ifEmpty }),
      ...(step.ifUnused === undefined ? {} : { ifUnused: step.ifUnused }),
    });
  }

  async inspectQueue(queue: string): Promise<QueueCounts> {
    const { messages, consumers } = await this.sluice.inspectQueue(queue);
    return { messages, consumers };
  }

  purgeQueue(queue: string): Promise<number> {
    return this.sluice.purgeQueue(queue);
  }

  /** Header arguments when the step has them, else its binding key (as amqplib takes both). */
  private bindingOf(step: StepOf<'bindQueue' | 'unbindQueue'>): string | BindingArguments {
    // Handed over unchecked (null values included): refusing them is sluice's to observe.
    return (step.arguments as BindingArguments | undefined) ?? step.routingKey ?? '';
  }

  async bindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void> {
    await this.sluice.bindQueue(step.queue, step.exchange, this.bindingOf(step));
  }

  async unbindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void> {
    await this.sluice.unbindQueue(step.queue, step.exchange, this.bindingOf(step));
  }

  /** A confirm is an ack; QueueFullError is the broker's nack, UnroutableError its basic.return. */
  async publish(step: StepOf<'publish'>): Promise<'ack' | 'nack' | 'returned'> {
    try {
      await this.sluice.publish(step.exchange, step.routingKey, step.body, {
        ...(step.mandatory === undefined ? {} : { mandatory: step.mandatory }),
        ...(step.headers === undefined ? {} : { headers: step.headers as Headers }),
        ...(step.expiration === undefined ? {} : { expirationMs: Number(step.expiration) }),
      });
      return 'ack';
    } catch (error) {
      if (error instanceof QueueFullError) return 'nack';
      if (error instanceof UnroutableError) return 'returned';
      throw error;
    }
  }

  /**
   * The handler form, because it resolves once the consumer is registered (as consume-ok),
   * with every prefetched delivery handed out at once (as amqplib does). The handler stays
   * pending until the scenario settles the delivery, so sluice never settles it by itself.
   * The consumer's `cancelled` event is the broker's basic.cancel.
   */
  async consume({ consumer, queue, prefetch }: ConsumerSpec, sink: ConsumerSink): Promise<void> {
    const started = await this.sluice.consume(
      queue,
      (delivery) =>
        new Promise<void>((release) => {
          const handle: Handle = { delivery, release };
          sink.delivered({ observation: this.observe(delivery), handle });
        }),
      { prefetch, concurrency: prefetch },
    );
    started.on('cancelled', () => sink.cancelled());
    this.consumers.set(consumer, started);
  }

  async settle(_consumer: string, received: Received, how: Settlement): Promise<void> {
    const { delivery, release } = received.handle as Handle;
    try {
      if (how === 'ack') await delivery.ack();
      // sluice's reject always dead-letters; a reject with requeue is its nack.
      else if (how === 'nack-requeue' || how === 'reject-requeue') await delivery.nack();
      else await delivery.reject();
    } finally {
      release();
    }
  }

  /** As a closed channel: stop at once, settle nothing (what is held stays unacked). */
  async closeConsumer(consumer: string): Promise<void> {
    await this.consumers.get(consumer)?.close({ timeoutMs: 0 });
  }

  errorCode(error: unknown): number | string | undefined {
    if (!(error instanceof SluiceError)) return undefined;
    return REPLY_CODES[error.code] ?? error.code;
  }

  errorMessage(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
  }

  private observe(delivery: Delivery<unknown>): DeliveryObservation {
    // A quorum queue's x-delivery-count counts earlier deliveries (absent on the first);
    // deliveryCount counts this one too.
    const earlier = delivery.deliveryCount - 1;
    return {
      body: String(delivery.body),
      redelivered: delivery.redelivered,
      exchange: delivery.exchange,
      routingKey: delivery.routingKey,
      ...(this.quorumQueues.has(delivery.queue) && earlier > 0 ? { deliveryCount: earlier } : {}),
      ...(delivery.expirationMs === undefined ? {} : { expiration: String(delivery.expirationMs) }),
      ...(Object.keys(delivery.headers).length > 0 ? { headers: delivery.headers } : {}),
      ...(delivery.deathHistory === undefined ? {} : { deaths: deathsOf(delivery.deathHistory) }),
    };
  }

  /** Closes the scenario's consumers (the client and namespace belong to the caller). */
  async dispose(): Promise<void> {
    await Promise.all([...this.consumers.values()].map((c) => c.close({ timeoutMs: 0 })));
  }
}
