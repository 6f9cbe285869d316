/**
 * What the producer asks of tracing, apart from `@opentelemetry/api`: the producer's types, and
 * so the package's public declarations, do not import the optional peer dependency.
 */
import type { TraceContext } from './trace-context.js';

/** A publish span: the context its message carries, and its end at the publish's outcome. */
export interface PublishSpan {
  /** What the envelope carries: the span's context, or the parent's without an SDK. */
  readonly context: TraceContext | undefined;
  /** Ends the span: the publish was confirmed, or (`failed`) rejected with `error`. */
  end(failed: boolean, error?: unknown): void;
}

/** What the producer asks of tracing; undefined without `@opentelemetry/api`. */
export interface PublishTracing {
  /** Starts the span of one message, a child of `parent` (else of the active context). */
  startPublish(
    exchange: string,
    routingKey: string,
    messageId: string,
    parent: TraceContext | undefined,
  ): PublishSpan;
}
