/**
 * The shapes the dashboard's JSON API answers with, shared by its server and its front end
 * (which imports these types only). Plain data: what `toJson` writes.
 */
import type { QueueTotals } from '../queue/data.js';

/** One exchange of the overview. */
export interface ExchangeView {
  readonly name: string;
  readonly type: string;
}

/** One binding of the overview: `source` exchange to a queue or an exchange. */
export interface BindingView {
  readonly source: string;
  readonly destination: string;
  readonly destinationType: 'queue' | 'exchange';
  readonly bindingKey: string;
}

/** One queue of the overview: its counts, totals and rates. */
export interface QueueView {
  readonly name: string;
  readonly ready: number;
  readonly unacked: number;
  readonly delayed: number;
  readonly deadLetterBacklog: number;
  /** Age of the oldest message not yet acked: how far behind the slowest consumer is. */
  readonly lagMs: number;
  readonly consumers: number;
  readonly partitions: number;
  /** Counters since the queue was declared: `stats().totals`. */
  readonly totals: QueueTotals;
  /** Per second, between the last two readings; null until there are two. */
  readonly publishRate: number | null;
  readonly deliverRate: number | null;
  readonly ackRate: number | null;
  /** Failed deliveries given back for another delivery. */
  readonly redeliverRate: number | null;
  /** Dead letters of every reason, routed or dropped. */
  readonly deadLetterRate: number | null;
  readonly dropRate: number | null;
  /** The queue's dead-letter exchange; null when it has none. */
  readonly deadLetterExchange: string | null;
}

/** What GET /api/overview answers. */
export interface OverviewView {
  readonly namespace: string;
  readonly server: { readonly name: string; readonly version: string };
  readonly readOnly: boolean;
  readonly exchanges: readonly ExchangeView[];
  readonly queues: readonly QueueView[];
  readonly bindings: readonly BindingView[];
  /** Queue depths over time, oldest first. */
  readonly history: readonly DepthSample[];
}

/**
 * A queue's messages at one time, by state: a failing queue's messages move from ready to
 * unacked to delayed (retries waiting for their backoff) and back.
 */
export interface QueueDepth {
  readonly ready: number;
  readonly unacked: number;
  readonly delayed: number;
}

/** Every queue's depth at one time. */
export interface DepthSample {
  readonly time: number;
  readonly depth: Readonly<Record<string, QueueDepth>>;
}
