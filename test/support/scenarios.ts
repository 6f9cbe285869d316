/**
 * Broker-neutral scenarios: steps that a RabbitMQ broker (through amqplib, in
 * scripts/record-rabbitmq.ts) and sluice (test/support/sluice-driver.ts) can both play, the
 * observations each step yields, and the one interpreter that plays steps on either. Keeping
 * the interpreter shared means a difference in the observations is a difference of the
 * systems, not of two hand-written replays.
 *
 * No vitest import here: the recorder runs this outside the test runner.
 */
import { readFileSync } from 'node:fs';
import { waitFor } from '../../scripts/local-redis.js';

/** A value of an AMQP argument or header table, as the scenarios use them (JSON scalars and null). */
export type TableValue = string | number | boolean | null;

/** An AMQP field table: queue arguments, binding arguments, message headers. */
export type Table = Readonly<Record<string, TableValue>>;

/** The four exchange types. */
export type ExchangeKind = 'direct' | 'topic' | 'fanout' | 'headers';

/**
 * What a consumer does with each delivery as soon as it arrives: nothing (`manual`: the
 * scenario's own ack/nack/reject steps settle it), ack it, nack it with requeue, or reject it
 * without requeue.
 */
export type SettlePolicy = 'manual' | 'ack' | 'nack-requeue' | 'reject';

/** Fields every step may carry: a label that expectations (and failure messages) refer to. */
interface Labelled {
  readonly label?: string;
}

/**
 * One step of a scenario. Queue and exchange names are logical: a driver maps them to names of
 * its own run (the recorder prefixes them; sluice uses a fresh namespace). Names starting with
 * `amq.` and the default exchange `''` are never mapped.
 */
export type Step = Labelled &
  (
    | { readonly op: 'declareExchange'; readonly exchange: string; readonly type: ExchangeKind }
    | { readonly op: 'deleteExchange'; readonly exchange: string; readonly ifUnused?: boolean }
    | { readonly op: 'declareQueue'; readonly queue: string; readonly arguments?: Table }
    | {
        readonly op: 'deleteQueue';
        readonly queue: string;
        readonly ifEmpty?: boolean;
        readonly ifUnused?: boolean;
      }
    /** Ready messages and consumers, as a passive queue.declare reports them. */
    | { readonly op: 'inspectQueue'; readonly queue: string }
    | { readonly op: 'purgeQueue'; readonly queue: string }
    | {
        readonly op: 'bindQueue' | 'unbindQueue';
        readonly queue: string;
        readonly exchange: string;
        readonly routingKey?: string;
        readonly arguments?: Table;
      }
    /** A confirmed publish; with `exchange: ''` the routing key is a (logical) queue name. */
    | {
        readonly op: 'publish';
        readonly exchange: string;
        readonly routingKey: string;
        readonly body: string;
        readonly headers?: Table;
        /** Per-message TTL in milliseconds, as AMQP's `expiration` property: a string. */
        readonly expiration?: string;
        readonly mandatory?: boolean;
      }
    | {
        readonly op: 'consume';
        readonly consumer: string;
        readonly queue: string;
        readonly prefetch: number;
        readonly settle: SettlePolicy;
      }
    /** Changes a consumer's policy; the new one applies to its unsettled deliveries too. */
    | { readonly op: 'setPolicy'; readonly consumer: string; readonly settle: SettlePolicy }
    /** Settles the consumer's latest unsettled delivery of `body`. */
    | { readonly op: 'ack'; readonly consumer: string; readonly body: string }
    | {
        readonly op: 'nack' | 'reject';
        readonly consumer: string;
        readonly body: string;
        readonly requeue: boolean;
      }
    /** Ends the consumer as a client going away does: its channel closes, nothing is settled. */
    | { readonly op: 'closeConsumer'; readonly consumer: string }
    /**
     * Waits until the consumer has `count` deliveries not yet observed and observes the first
     * `count` of them, in order.
     */
    | {
        readonly op: 'awaitDeliveries';
        readonly consumer: string;
        readonly count: number;
        readonly timeoutMs: number;
      }
    /** Observes every delivery not yet observed, without waiting (for a consumer at rest). */
    | { readonly op: 'deliveries'; readonly consumer: string }
    /** Waits until the server ends the consumer (AMQP basic.cancel). */
    | { readonly op: 'awaitCancelled'; readonly consumer: string; readonly timeoutMs: number }
    /** Waits until the queue holds exactly `messages` ready messages. */
    | {
        readonly op: 'awaitMessageCount';
        readonly queue: string;
        readonly messages: number;
        readonly timeoutMs: number;
      }
    /** Consumes `count` messages with a consumer of its own, acks them, observes them. */
    | {
        readonly op: 'take';
        readonly queue: string;
        readonly count: number;
        readonly timeoutMs: number;
      }
  );

/** One element of `x-death`, without its `time` (which no two runs share). */
export interface DeathObservation {
  readonly queue: string;
  readonly reason: string;
  readonly count: number;
  readonly exchange: string;
  readonly routingKeys: readonly string[];
  /** The `expiration` the message had when it died, as the broker writes it (a string). */
  readonly originalExpiration?: string;
}

/** Where a message first (and last) died: `x-first-death-*` (and `x-last-death-*`). */
export interface DeathSummaryObservation {
  readonly queue: string;
  readonly reason: string;
  readonly exchange: string;
}

/** A message's death history: `x-death` (most recent first) and the summary headers. */
export interface DeathsObservation {
  readonly records: readonly DeathObservation[];
  readonly first?: DeathSummaryObservation;
  readonly last?: DeathSummaryObservation;
}

/** One delivery, as a consumer saw it. */
export interface DeliveryObservation {
  readonly body: string;
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  /**
   * Earlier deliveries of the message, where the broker says: a quorum queue's
   * `x-delivery-count` header (absent on a first delivery, so absent here too).
   */
  readonly deliveryCount?: number;
  /** Per-message TTL the delivered message still carries. */
  readonly expiration?: string;
  /** Headers other than those the broker writes for dead-lettering and delivery counts. */
  readonly headers?: Table;
  readonly deaths?: DeathsObservation;
}

/**
 * What one step yielded. Every step yields one: `ok`, an error with its AMQP reply code (or,
 * where sluice has no AMQP counterpart, sluice's error code), or what it observed.
 */
export type Observation =
  | { readonly ok: true }
  | {
      readonly error: number | string;
      /** The server's or library's message: informative, never compared. */
      readonly message?: string;
    }
  | { readonly published: 'ack' | 'nack' | 'returned' }
  | { readonly deliveries: readonly DeliveryObservation[]; readonly timedOut?: true }
  | { readonly messages: number; readonly consumers?: number; readonly timedOut?: true }
  | { readonly purged: number }
  | { readonly cancelled: boolean };

/** A scenario as the fixture holds it. */
export interface RecordedScenario {
  /** Unique; the replay test names its cases by it. */
  readonly name: string;
  /** The area it belongs to (the replay test's `describe`). */
  readonly area: string;
  /** What it asks of the broker. */
  readonly question: string;
  readonly steps: readonly Step[];
  /** One per step, in order. */
  readonly observations: readonly Observation[];
}

/** `test/fixtures/rabbitmq-scenarios.json`. */
export interface ScenarioFixture {
  /** Product and version the broker announced, e.g. `RabbitMQ 3.10.8`. */
  readonly broker: string;
  readonly client: string;
  /** ISO date of the recording. */
  readonly recordedAt: string;
  readonly scenarios: readonly RecordedScenario[];
}

/** The fixture's location, for the recorder (writes) and the replay test (reads). */
export const FIXTURE_URL = new URL('../fixtures/rabbitmq-scenarios.json', import.meta.url);

function isRecordedScenario(value: unknown): value is RecordedScenario {
  const { name, area, steps, observations } = (value ?? {}) as Partial<RecordedScenario>;
  return (
    typeof name === 'string' &&
    typeof area === 'string' &&
    Array.isArray(steps) &&
    Array.isArray(observations) &&
    steps.length > 0 &&
    steps.length === observations.length
  );
}

/** Reads the fixture and checks its shape, so that a broken file fails loudly, not vacuously. */
export function loadFixture(): ScenarioFixture {
  const parsed = JSON.parse(readFileSync(FIXTURE_URL, 'utf8')) as Partial<ScenarioFixture>;
  const scenarios: unknown = parsed.scenarios;
  if (typeof parsed.broker !== 'string' || !Array.isArray(scenarios) || scenarios.length === 0) {
    throw new Error('rabbitmq-scenarios.json: no broker or no scenarios');
  }
  const malformed = (scenarios as unknown[]).findIndex((s) => !isRecordedScenario(s));
  if (malformed !== -1)
    throw new Error(`rabbitmq-scenarios.json: scenario ${malformed} is malformed`);
  return parsed as ScenarioFixture;
}

/** A delivery a driver received, with what it needs to settle it later. */
export interface Received {
  readonly observation: DeliveryObservation;
  /** Driver-specific: the amqplib message, the sluice Delivery. */
  readonly handle: unknown;
}

/** Callbacks of a started consumer. */
export interface ConsumerSink {
  delivered(received: Received): void;
  /** The server ended the consumer (not the scenario). */
  cancelled(): void;
}

/** A consumer to start: its name in the scenario, its queue and its prefetch. */
export interface ConsumerSpec {
  readonly consumer: string;
  readonly queue: string;
  readonly prefetch: number;
}

/** Queue counts as a passive declare gives them. */
export interface QueueCounts {
  readonly messages: number;
  readonly consumers: number;
}

/** How a driver settles a delivery. */
export type Settlement = 'ack' | 'nack-requeue' | 'reject-requeue' | 'dead-letter';

/** The steps of one op. */
export type StepOf<Op extends Step['op']> = Extract<Step, { op: Op }>;

/**
 * What a system under test must do for the interpreter. Every method fails with an error that
 * {@link Driver.errorCode} classifies.
 */
export interface Driver {
  declareExchange(step: StepOf<'declareExchange'>): Promise<void>;
  deleteExchange(step: StepOf<'deleteExchange'>): Promise<void>;
  declareQueue(step: StepOf<'declareQueue'>): Promise<void>;
  deleteQueue(step: StepOf<'deleteQueue'>): Promise<void>;
  inspectQueue(queue: string): Promise<QueueCounts>;
  purgeQueue(queue: string): Promise<number>;
  bindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void>;
  unbindQueue(step: StepOf<'bindQueue' | 'unbindQueue'>): Promise<void>;
  publish(step: StepOf<'publish'>): Promise<'ack' | 'nack' | 'returned'>;
  /** Starts a consumer; resolves once the server has registered it. */
  consume(spec: ConsumerSpec, sink: ConsumerSink): Promise<void>;
  settle(consumer: string, received: Received, how: Settlement): Promise<void>;
  closeConsumer(consumer: string): Promise<void>;
  /** The AMQP reply code of a failure (or the system's own code); undefined when it is not one. */
  errorCode(error: unknown): number | string | undefined;
  /** The failure's message, with run-specific names removed. */
  errorMessage(error: unknown): string;
}

/** A consumer as the interpreter tracks it. */
interface ConsumerState {
  policy: SettlePolicy;
  readonly received: Received[];
  /** How many of `received` have been observed. */
  observed: number;
  readonly unsettled: Set<Received>;
  cancelled: boolean;
  /** Settlements the policy made; awaited before the scenario ends. */
  readonly settling: Promise<void>[];
}

/**
 * A settle step for a delivery that never came (an earlier step went otherwise than on the
 * broker): observed as the error `NO_DELIVERY`, and the scenario goes on.
 */
class NoDeliveryError extends Error {
  readonly code = 'NO_DELIVERY';
}

const SETTLEMENT_OF: Record<Exclude<SettlePolicy, 'manual'>, Settlement> = {
  ack: 'ack',
  'nack-requeue': 'nack-requeue',
  reject: 'dead-letter',
};

/**
 * Plays `steps` on `driver` and returns one observation per step. A failing step is observed
 * as its error and the scenario goes on, as a client that logs an error would; an error that
 * is neither the system's nor a missing delivery is a bug of the scenario or driver: thrown.
 */
export async function play(driver: Driver, steps: readonly Step[]): Promise<Observation[]> {
  const consumers = new Map<string, ConsumerState>();
  let takes = 0;

  const consumerOf = (name: string): ConsumerState => {
    const state = consumers.get(name);
    if (state === undefined) throw new Error(`scenario: no consumer '${name}'`);
    return state;
  };

  const settle = (name: string, state: ConsumerState, received: Received, how: Settlement) => {
    state.unsettled.delete(received);
    return driver.settle(name, received, how);
  };

  const applyPolicy = (name: string, state: ConsumerState, received: Received): void => {
    if (state.policy === 'manual') return;
    // A policy settlement that fails shows in later observations (the message stays or
    // comes back); it must not stop the scenario.
    state.settling.push(
      settle(name, state, received, SETTLEMENT_OF[state.policy]).catch(() => undefined),
    );
  };

  const startConsumer = async (
    name: string,
    queue: string,
    prefetch: number,
    policy: SettlePolicy,
  ): Promise<ConsumerState> => {
    const state: ConsumerState = {
      policy,
      received: [],
      observed: 0,
      unsettled: new Set(),
      cancelled: false,
      settling: [],
    };
    consumers.set(name, state);
    await driver.consume(
      { consumer: name, queue, prefetch },
      {
        delivered: (received) => {
          state.received.push(received);
          state.unsettled.add(received);
          applyPolicy(name, state, received);
        },
        cancelled: () => {
          state.cancelled = true;
        },
      },
    );
    return state;
  };

  /** Waits (polling, with a deadline) until `count` deliveries are unobserved; takes them. */
  const awaitDeliveries = async (
    state: ConsumerState,
    count: number,
    timeoutMs: number,
  ): Promise<Observation> => {
    let timedOut = false;
    await waitFor(() => state.received.length - state.observed >= count, {
      timeoutMs,
      intervalMs: 10,
    }).catch(() => (timedOut = true));
    const taken = state.received.slice(state.observed, state.observed + count);
    state.observed += taken.length;
    const deliveries = taken.map((received) => received.observation);
    return timedOut ? { deliveries, timedOut: true } : { deliveries };
  };

  const latestUnsettled = (state: ConsumerState, body: string): Received => {
    const match = [...state.unsettled].reverse().find((r) => r.observation.body === body);
    if (match === undefined) throw new NoDeliveryError(`no unsettled delivery of '${body}'`);
    return match;
  };

  const run = async (step: Step): Promise<Observation> => {
    switch (step.op) {
      case 'declareExchange':
        await driver.declareExchange(step);
        return { ok: true };
      case 'deleteExchange':
        await driver.deleteExchange(step);
        return { ok: true };
      case 'declareQueue':
        await driver.declareQueue(step);
        return { ok: true };
      case 'deleteQueue':
        await driver.deleteQueue(step);
        return { ok: true };
      case 'inspectQueue':
        return { ...(await driver.inspectQueue(step.queue)) };
      case 'purgeQueue':
        return { purged: await driver.purgeQueue(step.queue) };
      case 'bindQueue':
        await driver.bindQueue(step);
        return { ok: true };
      case 'unbindQueue':
        await driver.unbindQueue(step);
        return { ok: true };
      case 'publish':
        return { published: await driver.publish(step) };
      case 'consume':
        await startConsumer(step.consumer, step.queue, step.prefetch, step.settle);
        return { ok: true };
      case 'setPolicy': {
        const state = consumerOf(step.consumer);
        state.policy = step.settle;
        for (const received of [...state.unsettled]) applyPolicy(step.consumer, state, received);
        return { ok: true };
      }
      case 'ack': {
        const state = consumerOf(step.consumer);
        await settle(step.consumer, state, latestUnsettled(state, step.body), 'ack');
        return { ok: true };
      }
      case 'nack':
      case 'reject': {
        const state = consumerOf(step.consumer);
        const how = step.requeue
          ? step.op === 'nack'
            ? 'nack-requeue'
            : 'reject-requeue'
          : 'dead-letter';
        await settle(step.consumer, state, latestUnsettled(state, step.body), how);
        return { ok: true };
      }
      case 'closeConsumer':
        await driver.closeConsumer(step.consumer);
        return { ok: true };
      case 'awaitDeliveries':
        return awaitDeliveries(consumerOf(step.consumer), step.count, step.timeoutMs);
      case 'deliveries': {
        const state = consumerOf(step.consumer);
        return awaitDeliveries(state, state.received.length - state.observed, 0);
      }
      case 'awaitCancelled': {
        const state = consumerOf(step.consumer);
        await waitFor(() => state.cancelled, { timeoutMs: step.timeoutMs, intervalMs: 10 }).catch(
          () => undefined,
        );
        return { cancelled: state.cancelled };
      }
      case 'awaitMessageCount': {
        let counts: QueueCounts | undefined;
        const reached = await waitFor(
          async () => {
            counts = await driver.inspectQueue(step.queue);
            return counts.messages === step.messages;
          },
          { timeoutMs: step.timeoutMs, intervalMs: 20 },
        ).catch(() => false);
        if (reached) return { messages: step.messages };
        // Never reached: the last count read, or the error that every read ended with.
        if (counts === undefined) await driver.inspectQueue(step.queue);
        return { messages: counts?.messages ?? -1, timedOut: true };
      }
      case 'take': {
        const name = `take-${++takes}`;
        const state = await startConsumer(name, step.queue, step.count, 'ack');
        const observation = await awaitDeliveries(state, step.count, step.timeoutMs);
        await Promise.all(state.settling);
        await driver.closeConsumer(name);
        return observation;
      }
    }
  };

  const observations: Observation[] = [];
  for (const step of steps) {
    try {
      observations.push(await run(step));
    } catch (error) {
      const code = error instanceof NoDeliveryError ? error.code : driver.errorCode(error);
      if (code === undefined) throw error;
      const message = error instanceof Error ? driver.errorMessage(error) : String(error);
      observations.push({ error: code, message });
    }
  }
  for (const state of consumers.values()) await Promise.all(state.settling);
  return observations;
}

/** An observation as compared: the informative error message left out. */
export function comparable(observation: Observation): Observation {
  if ('error' in observation) return { error: observation.error };
  return observation;
}
