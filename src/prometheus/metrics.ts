import { types } from 'node:util';
import {
  Counter,
  Gauge,
  Histogram,
  register as defaultRegistry,
  type Metric,
  type Registry,
} from 'prom-client';
import type { Consumer, ConsumerEventName, ConsumerListener } from '../consumer/types.js';
import { InvalidArgumentError, PreconditionFailedError, SluiceError } from '../errors/index.js';
import { DEATH_REASONS } from '../message/death-history.js';
import type { ClientEvents } from '../events.js';
import type { QueueStats } from '../queue/data.js';
import { Sluice } from '../sluice.js';
import {
  hasMethods,
  optionNames,
  validateArray,
  validateName,
  validateOptionsObject,
} from '../validation/index.js';

/** Options of {@link prometheusMetrics}. */
export interface PrometheusOptions {
  /** The client whose publishes and connection are counted, and whose `stats()` are read. */
  readonly sluice: Sluice;
  /** Where the metrics are registered. Default: prom-client's global registry. */
  readonly registry?: Registry | undefined;
  /**
   * The queues whose `stats()` become the `sluice_queue_*` metrics on each scrape. Default:
   * every declared queue; `[]` for none.
   */
  readonly queues?: readonly string[] | undefined;
}

/** The metrics of a client, as {@link prometheusMetrics} registers them. */
export interface PrometheusMetrics {
  /** Counts a consumer's deliveries, handler durations, dead letters and partitions too. */
  observe(consumer: Consumer): void;
  /** Stops listening to the client and the consumers, and removes the metrics from the registry. */
  close(): void;
}

const OPTIONS = optionNames<PrometheusOptions>({ sluice: true, registry: true, queues: true });

/** Confirm latencies: a written publish takes about a millisecond, a replicated one more. */
const CONFIRM_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
/** Handler durations: from a few milliseconds to a minute. */
const HANDLER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The `reason` label of a failure: a SluiceError's code, else `UNKNOWN`. */
function reasonOf(error: unknown): string {
  return error instanceof SluiceError ? error.code : 'UNKNOWN';
}

/**
 * Registers sluice's metrics in a prom-client registry: counters and histograms fed by the
 * client's events (publishes, confirms, connection losses) and by the events of the consumers
 * handed to {@link PrometheusMetrics.observe}, and gauges of each queue's `stats()`, read once
 * per scrape. Metric names, types and labels: docs/metrics.md. Fails with
 * PreconditionFailedError, registering nothing, when the registry has one of these metrics
 * already (another `prometheusMetrics` of it that was not closed).
 */
export function prometheusMetrics(options: PrometheusOptions): PrometheusMetrics {
  validateOptionsObject('prometheus options', options, OPTIONS);
  if (options === undefined) throw new InvalidArgumentError('prometheus options are required');
  // A proxy's prototype lookup runs code of its own (and may throw): refused before instanceof.
  if (types.isProxy(options.sluice) || !(options.sluice instanceof Sluice)) {
    throw new InvalidArgumentError('sluice must be a Sluice client');
  }
  if (
    options.registry !== undefined &&
    !hasMethods(options.registry, ['registerMetric', 'removeSingleMetric', 'getSingleMetric'])
  ) {
    throw new InvalidArgumentError('registry must be a prom-client Registry');
  }
  if (options.queues !== undefined) {
    validateArray('queues', options.queues);
    for (const queue of options.queues) validateName('queue', queue);
  }
  return new PrometheusMetricsImpl(
    options.sluice,
    options.registry ?? defaultRegistry,
    options.queues === undefined ? undefined : [...options.queues],
  );
}

class PrometheusMetricsImpl implements PrometheusMetrics {
  /**
   * The metrics this made, created unregistered and registered together once none of their
   * names is taken, so that a conflict leaves the registry as it was; {@link close} removes them.
   */
  private readonly metrics: { readonly name: string; readonly metric: Metric }[] = [];
  /** Each observed consumer with what takes its listeners off again. */
  private readonly observed = new Map<Consumer, (() => void)[]>();
  private readonly clientListeners: (() => void)[] = [];
  /** The scrape's `stats()` read, shared by every gauge of one scrape. */
  private reading: Promise<readonly QueueStats[] | undefined> | undefined;

  private readonly published: Counter<'exchange'>;
  private readonly duplicates: Counter<'exchange'>;
  private readonly publishFailures: Counter<'exchange' | 'reason'>;
  private readonly publishRetries: Counter;
  private readonly confirmSeconds: Histogram<'exchange'>;
  private readonly connectionLosses: Counter<'queue'>;
  private readonly deliveries: Counter<'queue' | 'outcome'>;
  private readonly handlerSeconds: Histogram<'queue' | 'outcome'>;
  private readonly reclaimed: Counter<'queue'>;
  private readonly deadLettered: Counter<'queue' | 'reason'>;
  private readonly dropped: Counter<'queue' | 'reason'>;
  private readonly partitionsOwned: Gauge<'queue'>;

  constructor(
    private readonly sluice: Sluice,
    private readonly registry: Registry,
    private readonly queues: readonly string[] | undefined,
  ) {
    const registers: Registry[] = [];
    const counter = <L extends string>(name: string, help: string, labels: L[]): Counter<L> =>
      this.keep(name, new Counter({ name, help, labelNames: labels, registers }));
    const histogram = <L extends string>(
      name: string,
      help: string,
      labels: L[],
      buckets: number[],
    ): Histogram<L> =>
      this.keep(name, new Histogram({ name, help, labelNames: labels, buckets, registers }));
    this.published = counter(
      'sluice_messages_published_total',
      'Publishes confirmed (not counting duplicates), by exchange',
      ['exchange'],
    );
    this.duplicates = counter(
      'sluice_publish_duplicates_total',
      'Publishes confirmed as duplicates of an earlier one (idempotent publish), by exchange',
      ['exchange'],
    );
    this.publishFailures = counter(
      'sluice_publish_failures_total',
      'Publishes rejected, by exchange and error code',
      ['exchange', 'reason'],
    );
    this.publishRetries = counter(
      'sluice_publish_retries_total',
      'Producer script calls retried after a transient failure',
      [],
    );
    this.confirmSeconds = histogram(
      'sluice_publish_confirm_duration_seconds',
      'From a publish call to its confirm, by exchange',
      ['exchange'],
      CONFIRM_BUCKETS,
    );
    this.connectionLosses = counter(
      'sluice_connection_losses_total',
      'Connections to Redis lost: the client\'s (queue "") and each observed consumer\'s',
      ['queue'],
    );
    this.deliveries = counter(
      'sluice_deliveries_total',
      'Deliveries of observed consumers by outcome: handled, failed (the handler threw), duplicate',
      ['queue', 'outcome'],
    );
    this.handlerSeconds = histogram(
      'sluice_handler_duration_seconds',
      'Handler run time of observed consumers, by outcome (handled, failed)',
      ['queue', 'outcome'],
      HANDLER_BUCKETS,
    );
    this.reclaimed = counter(
      'sluice_deliveries_reclaimed_total',
      'Deliveries observed consumers took over after the ack timeout',
      ['queue'],
    );
    this.deadLettered = counter(
      'sluice_messages_dead_lettered_total',
      'Messages observed consumers dead-lettered to the dead-letter exchange, by reason',
      ['queue', 'reason'],
    );
    this.dropped = counter(
      'sluice_messages_dropped_total',
      'Messages observed consumers gave up on (by reason) in a queue without a dead-letter exchange: dropped',
      ['queue', 'reason'],
    );
    this.partitionsOwned = this.keep(
      'sluice_partitions_owned',
      new Gauge({
        name: 'sluice_partitions_owned',
        help: 'Partitions owned now by the observed ordered consumers',
        labelNames: ['queue'],
        registers,
      }),
    );
    this.registerQueueMetrics(registers);
    const taken = this.metrics
      .map(({ name }) => name)
      .filter((name) => registry.getSingleMetric(name) !== undefined);
    if (taken.length > 0) {
      throw new PreconditionFailedError(
        `the registry has sluice's metrics already (${taken.join(', ')}): close() the ` +
          'PrometheusMetrics that registered them, or give this one a registry of its own',
      );
    }
    for (const { metric } of this.metrics) registry.registerMetric(metric);
    this.listenToClient();
  }

  observe(consumer: Consumer): void {
    if (!hasMethods(consumer, ['on', 'off', 'close'])) {
      throw new InvalidArgumentError('observe takes a consumer');
    }
    if (this.observed.has(consumer)) return;
    const { queue } = consumer;
    const stops: (() => void)[] = [];
    const listen = <K extends ConsumerEventName>(name: K, listener: ConsumerListener<K>): void => {
      consumer.on(name, listener);
      stops.push(() => consumer.off(name, listener));
    };
    listen('delivery.handled', ({ durationMs }) => this.delivered(queue, 'handled', durationMs));
    listen('delivery.failed', ({ durationMs }) => this.delivered(queue, 'failed', durationMs));
    listen('delivery.duplicate', () => this.deliveries.inc({ queue, outcome: 'duplicate' }));
    listen('delivery.reclaimed', () => this.reclaimed.inc({ queue }));
    listen('delivery.deadLettered', ({ reason, dropped }) =>
      (dropped ? this.dropped : this.deadLettered).inc({ queue, reason }),
    );
    listen('connection.lost', () => this.connectionLosses.inc({ queue }));
    listen('partition.assigned', () => this.partitionsOwned.inc({ queue }));
    listen('partition.revoked', () => this.partitionsOwned.dec({ queue }));
    this.observed.set(consumer, stops);
  }

  close(): void {
    for (const stop of this.clientListeners.splice(0)) stop();
    for (const stops of this.observed.values()) for (const stop of stops) stop();
    this.observed.clear();
    for (const { name } of this.metrics.splice(0)) this.registry.removeSingleMetric(name);
  }

  private delivered(queue: string, outcome: 'handled' | 'failed', durationMs: number): void {
    this.deliveries.inc({ queue, outcome });
    this.handlerSeconds.observe({ queue, outcome }, durationMs / 1000);
  }

  /** Notes a metric made, for the constructor to register and {@link close} to remove. */
  private keep<M extends Metric>(name: string, metric: M): M {
    this.metrics.push({ name, metric });
    return metric;
  }

  private listenToClient(): void {
    const listen = <K extends keyof ClientEvents>(
      name: K,
      listener: (event: ClientEvents[K]) => void,
    ): void => {
      this.sluice.on(name, listener);
      this.clientListeners.push(() => this.sluice.off(name, listener));
    };
    listen('publish.confirmed', ({ exchange, duplicate, durationMs }) => {
      (duplicate ? this.duplicates : this.published).inc({ exchange });
      this.confirmSeconds.observe({ exchange }, durationMs / 1000);
    });
    listen('publish.failed', ({ exchange, error }) =>
      this.publishFailures.inc({ exchange, reason: reasonOf(error) }),
    );
    listen('publish.retried', () => this.publishRetries.inc());
    listen('connection.lost', () => this.connectionLosses.inc({ queue: '' }));
  }

  /**
   * The `sluice_queue_*` metrics: each collected from the scrape's one `stats()` read. A read
   * that fails leaves them without samples for that scrape and counts the failure.
   */
  private registerQueueMetrics(registers: Registry[]): void {
    const failures = this.keep(
      'sluice_queue_stats_failures_total',
      new Counter({
        name: 'sluice_queue_stats_failures_total',
        help: 'Scrapes whose stats() read failed (the sluice_queue_* metrics are then empty)',
        registers,
      }),
    );
    const read = (): Promise<readonly QueueStats[] | undefined> => {
      // The gauges of one scrape are collected at once: they share one read.
      this.reading ??= this.readStats().then(
        (stats) => stats,
        () => {
          failures.inc();
          return undefined;
        },
      );
      const reading = this.reading;
      void reading.finally(() => {
        if (this.reading === reading) this.reading = undefined;
      });
      return reading;
    };
    const gauge = (name: string, help: string, value: (stats: QueueStats) => number): void => {
      this.keep(
        name,
        new Gauge({
          name,
          help,
          labelNames: ['queue'],
          registers,
          async collect() {
            this.reset();
            for (const stats of (await read()) ?? []) this.set({ queue: stats.name }, value(stats));
          },
        }),
      );
    };
    const total = (name: string, help: string, value: (stats: QueueStats) => number): void => {
      this.keep(
        name,
        new Counter({
          name,
          help,
          labelNames: ['queue'],
          registers,
          async collect() {
            this.reset();
            for (const stats of (await read()) ?? []) this.inc({ queue: stats.name }, value(stats));
          },
        }),
      );
    };
    this.keep(
      'sluice_queue_messages_dead_lettered_total',
      new Counter({
        name: 'sluice_queue_messages_dead_lettered_total',
        help: 'Messages that died in the queue, by reason, whether routed to its dead-letter exchange or dropped',
        labelNames: ['queue', 'reason'],
        registers,
        async collect() {
          this.reset();
          for (const stats of (await read()) ?? []) {
            for (const reason of DEATH_REASONS) {
              this.inc({ queue: stats.name, reason }, stats.totals.deadLettered[reason]);
            }
          }
        },
      }),
    );
    gauge('sluice_queue_messages_ready', 'Ready messages of the queue', (s) => s.messages);
    gauge('sluice_queue_messages_unacked', 'Delivered, not yet acked', (s) => s.unacked);
    gauge('sluice_queue_messages_delayed', 'Parked for a delayed retry', (s) => s.delayed);
    gauge(
      'sluice_queue_dead_letter_backlog',
      'Dead letters waiting to be routed to the dead-letter exchange',
      (s) => s.deadLetterBacklog,
    );
    gauge(
      'sluice_queue_oldest_message_age_seconds',
      'Age of the oldest message in the queue, ready or unacked (0 when empty)',
      (s) => s.oldestMessageAgeMs / 1000,
    );
    gauge('sluice_queue_consumers', 'Live consumers of the queue', (s) => s.consumers);
    gauge('sluice_queue_partitions', 'Partitions of the queue', (s) => s.partitions.length);
    const totals: [name: string, help: string, value: (stats: QueueStats) => number][] = [
      [
        'sluice_queue_messages_published_total',
        'Messages that entered the queue, from any client',
        (s) => s.totals.published,
      ],
      [
        'sluice_queue_messages_delivered_total',
        'Deliveries of new entries of the queue, to any consumer',
        (s) => s.totals.delivered,
      ],
      [
        'sluice_queue_messages_acked_total',
        'Deliveries of the queue acked, by any consumer',
        (s) => s.totals.acked,
      ],
      [
        'sluice_queue_messages_redelivered_total',
        'Failed deliveries of the queue given back for another delivery (requeued, delayed, retried in place)',
        (s) => s.totals.redelivered,
      ],
      [
        'sluice_queue_messages_dropped_total',
        'Dead letters of the queue dropped: no dead-letter exchange, or it routed them nowhere',
        (s) => s.totals.dropped,
      ],
    ];
    for (const [name, help, value] of totals) total(name, help, value);
  }

  private async readStats(): Promise<readonly QueueStats[]> {
    if (this.queues === undefined) return this.sluice.stats();
    return Promise.all(this.queues.map((queue) => this.sluice.stats(queue)));
  }
}
