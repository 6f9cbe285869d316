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
  /** Messages in the queue that its consumers have not read yet. */
  readonly lag: number;
  readonly consumers: number;
  readonly partitions: number;
  /** Per second, over the last sampling interval. */
  readonly publishRate: number;
  readonly deliverRate: number;
  readonly ackRate: number;
  /** The queue's dead-letter exchange, when it has one. */
  readonly deadLetterExchange: string | undefined;
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
