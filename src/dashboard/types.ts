/**
 * The shapes the dashboard's JSON API answers with, shared by its server and its front end
 * (which imports these types only). Plain data: what `toJson` writes.
 */

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

/** One queue of the overview: its counts and rates. */
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
  /** Per second, between the last two readings; null until there are two. */
  readonly publishRate: number | null;
  readonly deliverRate: number | null;
  readonly ackRate: number | null;
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

/** Every queue's depth (ready messages) at one time. */
export interface DepthSample {
  readonly time: number;
  readonly depth: Readonly<Record<string, number>>;
}
