/**
 * The router compiled from one topology snapshot: which queues a message published to
 * an exchange reaches, with the semantics of RabbitMQ's `rabbit_exchange:route`.
 */
import type {
  BindingRecord,
  ExchangeRecord,
  ExchangeType,
  TopologySnapshot,
} from '../topology/types.js';
import type { Headers } from '../message/headers.js';
import { compileHeadersBinding } from './headers.js';
import { TopicTrie } from './topic.js';

/**
 * Where a matched binding leads. Bindings whose destination is not in the snapshot
 * compile to `missing`: they deliver nothing, but they still count as a match, so
 * the source exchange does not fall back to its alternate exchange (RabbitMQ
 * consults the alternate exchange only when the exchange type's own route returned
 * nothing, before destinations are looked up).
 */
type Destination =
  | { readonly kind: 'queue'; readonly queue: string }
  | { readonly kind: 'exchange'; readonly exchange: CompiledExchange }
  | { readonly kind: 'missing' };

/** A binding with its destination resolved. */
interface Target {
  readonly binding: BindingRecord;
  readonly destination: Destination;
}

type Matcher = (routingKey: string, headers: Headers) => readonly Destination[];

interface CompiledExchange {
  /** Filled in once every exchange of the snapshot exists, since bindings may form cycles. */
  match: Matcher;
  alternate: CompiledExchange | undefined;
}

const NO_DESTINATIONS: readonly Destination[] = [];
const MISSING: Destination = { kind: 'missing' };

/** `Map.groupBy` with a projection; Node 20 does not have `Map.groupBy`. */
function groupBy<T, K, V>(
  items: Iterable<T>,
  keyOf: (item: T) => K,
  valueOf: (item: T) => V,
): Map<K, V[]> {
  const groups = new Map<K, V[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [valueOf(item)]);
    else group.push(valueOf(item));
  }
  return groups;
}

/**
 * Routing keys whose topic match a compiled topic exchange keeps: services publish with few
 * distinct keys, and a repeated key then costs one map lookup rather than a walk of the trie
 * (which grows with the bindings that share the key's words). Emptied when full, so that keys
 * of high cardinality cost a bounded amount of memory.
 */
const TOPIC_MATCHES_KEPT = 1024;

/** Compiles one exchange's bindings into the lookup its type calls for. */
function compileMatcher(type: ExchangeType, targets: readonly Target[]): Matcher {
  switch (type) {
    case 'direct': {
      const destinationsByKey = groupBy(
        targets,
        (target) => target.binding.bindingKey,
        (target) => target.destination,
      );
      return (routingKey) => destinationsByKey.get(routingKey) ?? NO_DESTINATIONS;
    }
    case 'topic': {
      const trie = new TopicTrie<Destination>();
      for (const { binding, destination } of targets) trie.add(binding.bindingKey, destination);
      const kept = new Map<string, readonly Destination[]>();
      return (routingKey) => {
        let destinations = kept.get(routingKey);
        if (destinations === undefined) {
          destinations = trie.match(routingKey);
          if (kept.size >= TOPIC_MATCHES_KEPT) kept.clear();
          kept.set(routingKey, destinations);
        }
        return destinations;
      };
    }
    case 'fanout': {
      const all = targets.map((target) => target.destination);
      return () => all;
    }
    case 'headers': {
      const compiled = targets.map(({ binding, destination }) => ({
        matches: compileHeadersBinding(binding.arguments),
        destination,
      }));
      return (_routingKey, headers) =>
        compiled.filter((entry) => entry.matches(headers)).map((entry) => entry.destination);
    }
  }
}

/**
 * Routes messages over one topology snapshot. Each exchange's bindings are compiled
 * once (direct: a map, topic: a trie, fanout: a list, headers: compiled matchers), as
 * publish calls `route` for every message; a new snapshot needs a new router.
 */
export class Router {
  /** Version of the snapshot this router was built from, checked by the publish script. */
  readonly version: number;
  private readonly exchanges = new Map<string, CompiledExchange>();
  private readonly queues: ReadonlySet<string>;
  private readonly records: ReadonlyMap<string, ExchangeRecord>;

  /** Compiles every exchange of `snapshot`. */
  constructor(snapshot: TopologySnapshot) {
    this.version = snapshot.version;
    this.records = snapshot.exchanges;
    this.queues = new Set(snapshot.queues.keys());
    for (const name of snapshot.exchanges.keys()) {
      this.exchanges.set(name, { match: () => NO_DESTINATIONS, alternate: undefined });
    }
    // Interned so that a trie deduplicates a destination bound by several patterns.
    const destinations = new Map<string, Destination>();
    const destinationOf = (kind: 'queue' | 'exchange', name: string): Destination => {
      const id = `${kind}:${name}`;
      let destination = destinations.get(id);
      if (destination === undefined) {
        destination = this.resolve(kind, name);
        destinations.set(id, destination);
      }
      return destination;
    };
    const bindingsBySource = groupBy(
      snapshot.bindings,
      (binding) => binding.source,
      (binding) => binding,
    );
    for (const record of snapshot.exchanges.values()) {
      const exchange = this.exchanges.get(record.name);
      if (exchange === undefined) continue;
      if (record.alternateExchange !== undefined) {
        exchange.alternate = this.exchanges.get(record.alternateExchange);
      }
      const bindings = bindingsBySource.get(record.name) ?? [];
      const targets = bindings.map((binding): Target => ({
        binding,
        destination: destinationOf(binding.destinationType, binding.destination),
      }));
      exchange.match = compileMatcher(record.type, targets);
    }
  }

  /** The declared exchange of that name in this snapshot, if any. */
  exchange(name: string): ExchangeRecord | undefined {
    return this.records.get(name);
  }

  /**
   * The queues, sorted and each once, that a message published to `exchange` reaches.
   * An unknown exchange reaches none. Refusing internal exchanges is the caller's job.
   */
  route(exchange: string, routingKey: string, headers: Headers): string[] {
    // The default exchange is not stored: every queue is implicitly bound to it by name.
    if (exchange === '') return this.queues.has(routingKey) ? [routingKey] : [];
    const start = this.exchanges.get(exchange);
    if (start === undefined) return [];
    const reached = new Set<string>();
    // Each exchange is routed through at most once, which ends exchange-to-exchange
    // and alternate-exchange cycles; the set of queues does not depend on the order.
    const seen = new Set<CompiledExchange>([start]);
    const worklist = [start];
    const enqueue = (next: CompiledExchange): void => {
      if (seen.has(next)) return;
      seen.add(next);
      worklist.push(next);
    };
    for (let current = worklist.pop(); current !== undefined; current = worklist.pop()) {
      const destinations = current.match(routingKey, headers);
      if (destinations.length === 0 && current.alternate !== undefined) enqueue(current.alternate);
      for (const destination of destinations) {
        if (destination.kind === 'queue') reached.add(destination.queue);
        else if (destination.kind === 'exchange') enqueue(destination.exchange);
      }
    }
    return [...reached].sort();
  }

  private resolve(kind: 'queue' | 'exchange', name: string): Destination {
    if (kind === 'queue') return this.queues.has(name) ? { kind, queue: name } : MISSING;
    const exchange = this.exchanges.get(name);
    return exchange === undefined ? MISSING : { kind, exchange };
  }
}
