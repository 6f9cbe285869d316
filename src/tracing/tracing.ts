/**
 * OpenTelemetry spans of publishing and processing, when the application has
 * `@opentelemetry/api` (an optional peer dependency): loaded once per process with a dynamic
 * import, and nothing at all happens without it. Spans follow the messaging semantic
 * conventions: a PRODUCER span per published message, whose context the message carries in its
 * envelope (W3C `traceparent` / `tracestate`), and a CONSUMER span per handler run, a child of
 * that context, active while the handler runs so that the handler's own spans nest under it.
 */
import type * as OpenTelemetryApi from '@opentelemetry/api';
import { SluiceError } from '../errors/index.js';
import type { PublishSpan, PublishTracing } from './publish-tracing.js';
import { formatTraceparent, parseTraceparent, type TraceContext } from './trace-context.js';

type Api = typeof OpenTelemetryApi;

/** `messaging.system` of sluice's spans. */
const SYSTEM = 'sluice';
/** The name the messaging conventions give RabbitMQ's default exchange, `""` here too. */
const DEFAULT_EXCHANGE = 'amq.default';

/** The part of a delivery a process span reads. */
interface TracedDelivery {
  readonly queue: string;
  readonly messageId: string;
  readonly correlationId: string | undefined;
  readonly deliveryCount: number;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
}

/** The end of a publish without a span. */
function nothing(): void {
  // No span was started.
}

/** Spans of one client, through the application's `@opentelemetry/api`. */
export class Tracing implements PublishTracing {
  constructor(private readonly api: Api) {}

  /**
   * The tracer of the SDK registered now (asked per message, so that an SDK registered,
   * replaced or disabled later counts), or undefined without one: every span would then be a
   * no-op, and sluice makes none (their objects cost a consumer ~4% of its time).
   */
  private sdkTracer(): OpenTelemetryApi.Tracer | undefined {
    // The API's global proxy (checked by its method, not its class: another copy of the API
    // package has a class of its own) has a delegate only once an SDK registered one.
    const provider =
      this.api.trace.getTracerProvider() as Partial<OpenTelemetryApi.ProxyTracerProvider> &
        OpenTelemetryApi.TracerProvider;
    return typeof provider.getDelegateTracer === 'function'
      ? provider.getDelegateTracer('sluice')
      : provider.getTracer('sluice');
  }

  startPublish(
    exchange: string,
    routingKey: string,
    messageId: string,
    parent: TraceContext | undefined,
  ): PublishSpan {
    const { api } = this;
    const tracer = this.sdkTracer();
    if (tracer === undefined) {
      // No SDK: the message carries what the application gave, else the active span's context,
      // if any, so that the trace goes on.
      return {
        context: parent ?? this.carried(api.trace.getActiveSpan()?.spanContext()),
        end: nothing,
      };
    }
    const destination = exchange === '' ? DEFAULT_EXCHANGE : exchange;
    const span = tracer.startSpan(
      `publish ${destination}`,
      {
        kind: api.SpanKind.PRODUCER,
        attributes: {
          'messaging.system': SYSTEM,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': destination,
          'messaging.message.id': messageId,
          'messaging.sluice.destination.routing_key': routingKey,
        },
      },
      this.contextOf(parent),
    );
    // A span the sampler dropped still has a valid context, which the message carries.
    const context = this.carried(span.spanContext()) ?? parent;
    return { context, end: (failed, error) => this.end(span, failed, error) };
  }

  /** What a message carries of a span context: undefined for none or an invalid one. */
  private carried(spanContext: OpenTelemetryApi.SpanContext | undefined): TraceContext | undefined {
    if (spanContext === undefined || !this.api.trace.isSpanContextValid(spanContext)) {
      return undefined;
    }
    const tracestate = spanContext.traceState?.serialize();
    return {
      traceparent: formatTraceparent(spanContext),
      ...(tracestate === undefined || tracestate === '' ? {} : { tracestate }),
    };
  }

  /**
   * `handler` run in a CONSUMER span per delivery, a child of the context the message carries,
   * active while the handler runs; the span ends when the handler returns or settles.
   */
  processing<D extends TracedDelivery, A extends unknown[], R>(
    handler: (delivery: D, ...rest: A) => R,
  ): (delivery: D, ...rest: A) => R {
    const { api } = this;
    return (delivery, ...rest) => {
      const carried =
        delivery.traceparent === undefined
          ? undefined
          : { traceparent: delivery.traceparent, tracestate: delivery.tracestate };
      const tracer = this.sdkTracer();
      if (tracer === undefined) {
        // No SDK: no span; the handler runs in the context the message carries, if any.
        if (carried === undefined) return handler(delivery, ...rest);
        return api.context.with(this.contextOf(carried), () => handler(delivery, ...rest));
      }
      const parent = this.contextOf(carried);
      const span = tracer.startSpan(
        `process ${delivery.queue}`,
        {
          kind: api.SpanKind.CONSUMER,
          attributes: {
            'messaging.system': SYSTEM,
            'messaging.operation.type': 'process',
            'messaging.operation.name': 'process',
            'messaging.destination.name': delivery.queue,
            'messaging.message.id': delivery.messageId,
            'messaging.sluice.message.delivery_count': delivery.deliveryCount,
            ...(delivery.correlationId === undefined
              ? {}
              : { 'messaging.message.conversation_id': delivery.correlationId }),
          },
        },
        parent,
      );
      let outcome: R;
      try {
        outcome = api.context.with(api.trace.setSpan(parent, span), () =>
          handler(delivery, ...rest),
        );
      } catch (error) {
        this.end(span, true, error);
        throw error;
      }
      const pending = outcome as PromiseLike<unknown> | undefined;
      if (typeof pending?.then === 'function') {
        pending.then(
          () => this.end(span, false),
          (error: unknown) => this.end(span, true, error),
        );
      } else {
        this.end(span, false);
      }
      return outcome;
    };
  }

  /** The context a span starts in: the carried one (a remote parent), else the active one. */
  private contextOf(carried: TraceContext | undefined): OpenTelemetryApi.Context {
    const { api } = this;
    const active = api.context.active();
    const parent = carried === undefined ? undefined : parseTraceparent(carried.traceparent);
    if (parent === undefined) return active;
    return api.trace.setSpanContext(active, {
      ...parent,
      isRemote: true,
      ...(carried?.tracestate === undefined
        ? {}
        : { traceState: api.createTraceState(carried.tracestate) }),
    });
  }

  /** Ends a span, with the error's status when it failed. */
  private end(span: OpenTelemetryApi.Span, failed: boolean, error?: unknown): void {
    if (failed) {
      span.setAttribute('error.type', errorType(error));
      if (error instanceof Error) span.recordException(error);
      span.setStatus({
        code: this.api.SpanStatusCode.ERROR,
        ...(error instanceof Error ? { message: error.message } : {}),
      });
    }
    span.end();
  }
}

/** `error.type` of the conventions: a SluiceError's code, else the error's class name. */
function errorType(error: unknown): string {
  if (error instanceof SluiceError) return error.code;
  if (error instanceof Error) return error.name;
  return typeof error;
}

let loading: Promise<Tracing | undefined> | undefined;

/**
 * Loads `@opentelemetry/api` once per process: the spans of a client, or undefined when the
 * application does not have the package (then tracing costs nothing).
 */
export function loadTracing(): Promise<Tracing | undefined> {
  loading ??= import('@opentelemetry/api').then(
    (api) => new Tracing(api),
    () => undefined,
  );
  return loading;
}
