import type { RedisClient } from '../connection/client.js';
import { callScript } from '../connection/scripts.js';
import {
  BIND,
  DECLARE,
  DELETE_EXCHANGE,
  DELETE_QUEUE,
  UNBIND,
} from '../connection/script-catalog.js';
import { Fences } from './fences.js';
import type { QueueData } from '../queue/data.js';
import {
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  AccessRefusedError,
} from '../errors/index.js';
import type { Keyspace } from '../keys/index.js';
import {
  optionNames,
  validateBindingArguments,
  validateBooleanOption,
  validateDeclaredName,
  validateEnumOption,
  validateIntegerOption,
  validateName,
  validateOptionsObject,
  validateRoutingKey,
  validateTopicPattern,
} from '../validation/index.js';
import { MAX_PARTITIONS, partitionCount } from '../queue/partitions.js';
import type { BindingArguments } from '../routing/headers.js';
import type {
  BindingRecord,
  DestinationType,
  ExchangeRecord,
  ExchangeType,
  OverflowPolicy,
  QueueOptions,
  QueueRecord,
  TopologyListing,
  TopologySnapshot,
} from './types.js';

/** Options of {@link Sluice.declareExchange}. */
export interface ExchangeOptions {
  /** Recorded for RabbitMQ parity; all topology is stored in Redis. Default true. */
  readonly durable?: boolean | undefined;
  /** An internal exchange takes messages only from other exchanges. Default false. */
  readonly internal?: boolean | undefined;
  /** Where messages go that this exchange cannot route. */
  readonly alternateExchange?: string | undefined;
}

/** Options of {@link Sluice.deleteExchange}. */
export interface DeleteExchangeOptions {
  /** Fail with PreconditionFailedError if the exchange still has bindings. */
  readonly ifUnused?: boolean | undefined;
}

/** Options of {@link Sluice.deleteQueue}. */
export interface DeleteQueueOptions {
  /** Fail with PreconditionFailedError if the queue holds messages. */
  readonly ifEmpty?: boolean | undefined;
  /** Fail with PreconditionFailedError if consumers are registered on the queue. */
  readonly ifUnused?: boolean | undefined;
}

const EXCHANGE_OPTIONS = optionNames<ExchangeOptions>({
  durable: true,
  internal: true,
  alternateExchange: true,
});
const QUEUE_OPTIONS = optionNames<QueueOptions>({
  durable: true,
  deadLetterExchange: true,
  deadLetterRoutingKey: true,
  maxDeliveries: true,
  ackTimeoutMs: true,
  messageTtlMs: true,
  maxLength: true,
  overflow: true,
  partitions: true,
  singleActiveConsumer: true,
});
const DELETE_EXCHANGE_OPTIONS = optionNames<DeleteExchangeOptions>({ ifUnused: true });
const DELETE_QUEUE_OPTIONS = optionNames<DeleteQueueOptions>({ ifEmpty: true, ifUnused: true });
const EXCHANGE_TYPES: readonly ExchangeType[] = ['direct', 'topic', 'fanout', 'headers'];

/**
 * The exchanges every RabbitMQ vhost has, here in every namespace: `amq.direct`, `amq.topic`,
 * `amq.fanout`, `amq.headers`. They are in every snapshot; a binding stores the record first.
 */
const PREDECLARED: ReadonlyMap<string, ExchangeRecord> = new Map(
  EXCHANGE_TYPES.map((type) => [
    `amq.${type}`,
    { name: `amq.${type}`, type, durable: true, internal: false },
  ]),
);
/** The default exchange `""`, as a listing shows it: every queue is bound to it by its name. */
const DEFAULT_EXCHANGE: ExchangeRecord = {
  name: '',
  type: 'direct',
  durable: true,
  internal: false,
};
const OVERFLOW_POLICIES: readonly OverflowPolicy[] = [
  'reject-publish',
  'drop-head',
  'reject-publish-dlx',
];
const DAY_MS = 86_400_000;

/** The largest `maxDeliveries` there is besides `'unlimited'`. */
const MAX_DELIVERIES = 1_000_000;

/** Checks `maxDeliveries`: a number of deliveries, or `'unlimited'`. */
function validateMaxDeliveries(value: unknown): void {
  const valid =
    value === undefined ||
    value === 'unlimited' ||
    (typeof value === 'number' &&
      Number.isSafeInteger(value) &&
      value >= 1 &&
      value <= MAX_DELIVERIES);
  if (!valid) {
    throw new InvalidArgumentError(
      `maxDeliveries must be an integer from 1 to ${MAX_DELIVERIES}, or 'unlimited'`,
    );
  }
}

/**
 * A queue declared again with other arguments. Another partition count gets a word of its own:
 * growing a queue's partitions would move keys between them (docs/ordering.md says how).
 */
function queueConflict(name: string, stored: string, wanted: string): PreconditionFailedError {
  const before = partitionCount(JSON.parse(stored) as QueueRecord);
  const after = partitionCount(JSON.parse(wanted) as QueueRecord);
  const detail =
    before === after
      ? ''
      : ` (it has ${before} partitions, not ${after}: see docs/ordering.md to grow a queue)`;
  return new PreconditionFailedError(
    `queue '${name}' exists with different arguments${detail}: ${stored}, not ${wanted}`,
  );
}

/** Sorted-key JSON, so that equal records and binding arguments compare equal as strings. */
function canonicalJson(value: Readonly<Record<string, unknown>>): string {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (value[key] !== undefined) sorted[key] = value[key];
  }
  return JSON.stringify(sorted);
}

function bindingField(binding: BindingRecord): string {
  return JSON.stringify([
    binding.source,
    binding.destinationType,
    binding.destination,
    binding.bindingKey,
    JSON.parse(canonicalJson(binding.arguments)),
  ]);
}

function parseBindingField(field: string): BindingRecord {
  const [source, destinationType, destination, bindingKey, args] = JSON.parse(field) as [
    string,
    DestinationType,
    string,
    string,
    BindingArguments | unknown[],
  ];
  // cjson and JSON.stringify agree on objects, but an empty object may round-trip as [].
  const bindingArguments = Array.isArray(args) ? {} : args;
  return { source, destinationType, destination, bindingKey, arguments: bindingArguments };
}

/**
 * The binding of `destination` to exchange `source` of type `type`, checked against that type:
 * a binding key for direct and topic (a valid pattern), none for fanout, header arguments (or
 * none) for headers.
 */
function bindingOf(
  type: ExchangeType,
  source: string,
  destinationType: DestinationType,
  destination: string,
  keyOrArguments: string | BindingArguments,
): BindingRecord {
  if (type === 'headers') {
    // A key given to a headers exchange binds with no arguments: an empty `all`, which
    // matches every message (RabbitMQ ignores the key of a headers binding).
    const args = typeof keyOrArguments === 'string' ? {} : keyOrArguments;
    return { source, destinationType, destination, bindingKey: '', arguments: args };
  }
  if (typeof keyOrArguments !== 'string') {
    throw new InvalidArgumentError(
      `${type} exchange '${source}' is bound with a key, not header arguments`,
    );
  }
  if (type === 'topic') validateTopicPattern(keyOrArguments);
  return {
    source,
    destinationType,
    destination,
    bindingKey: type === 'fanout' ? '' : keyOrArguments,
    arguments: {},
  };
}

function missingDestination(binding: BindingRecord): NotFoundError {
  return new NotFoundError(`${binding.destinationType} '${binding.destination}' does not exist`);
}

/**
 * Declares and deletes exchanges, queues and bindings. Every change is one script that
 * also increments the topology version, which producers check before appending.
 */
export class Topology {
  private readonly fences: Fences;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keyspace,
    private readonly data: QueueData,
    private readonly onChange: () => void,
  ) {
    this.fences = new Fences(redis, keys);
  }

  /** Declares an exchange; declaring it again with the same arguments is a no-op. */
  async declareExchange(
    name: string,
    type: ExchangeType,
    options: ExchangeOptions = {},
  ): Promise<void> {
    if (name === '') throw new AccessRefusedError('the default exchange cannot be declared');
    if (!PREDECLARED.has(name)) validateDeclaredName('exchange', name);
    validateEnumOption('exchange type', type, EXCHANGE_TYPES);
    if (type === undefined) throw new InvalidArgumentError('exchange type is required');
    validateOptionsObject('exchange options', options, EXCHANGE_OPTIONS);
    validateBooleanOption('durable', options.durable);
    validateBooleanOption('internal', options.internal);
    if (options.alternateExchange !== undefined)
      validateName('alternate exchange', options.alternateExchange);
    const record: ExchangeRecord = {
      name,
      type,
      durable: options.durable ?? true,
      internal: options.internal ?? false,
      ...(options.alternateExchange === undefined
        ? {}
        : { alternateExchange: options.alternateExchange }),
    };
    const predeclared = PREDECLARED.get(name);
    if (predeclared !== undefined) {
      // Declaring a predeclared exchange as it is changes nothing; otherwise 406, as RabbitMQ.
      const [asIs, asAsked] = [canonicalJson({ ...predeclared }), canonicalJson({ ...record })];
      if (asIs === asAsked) return;
      throw new PreconditionFailedError(
        `exchange '${name}' exists with different arguments: ${asIs}, not ${asAsked}`,
      );
    }
    await this.created(
      await this.declare(
        this.keys.topologyExchanges,
        'exchange',
        name,
        canonicalJson({ ...record }),
      ),
    );
  }

  /** Declares a queue with its arguments and creates its stream and consumer group. */
  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    validateDeclaredName('queue', name);
    validateOptionsObject('queue options', options, QUEUE_OPTIONS);
    validateBooleanOption('durable', options.durable);
    if (options.deadLetterExchange !== undefined && options.deadLetterExchange !== '') {
      validateName('dead-letter exchange', options.deadLetterExchange);
    }
    if (options.deadLetterRoutingKey !== undefined) {
      validateRoutingKey(options.deadLetterRoutingKey);
      if (options.deadLetterExchange === undefined) {
        throw new InvalidArgumentError('deadLetterRoutingKey requires deadLetterExchange');
      }
    }
    validateMaxDeliveries(options.maxDeliveries);
    validateIntegerOption('ackTimeoutMs', options.ackTimeoutMs, 100, 7 * DAY_MS);
    validateIntegerOption('messageTtlMs', options.messageTtlMs, 0, 365 * DAY_MS);
    validateIntegerOption('maxLength', options.maxLength, 0, 2 ** 31 - 1);
    validateEnumOption('overflow', options.overflow, OVERFLOW_POLICIES);
    if (options.overflow !== undefined && options.maxLength === undefined) {
      throw new InvalidArgumentError('overflow requires maxLength');
    }
    validateIntegerOption('partitions', options.partitions, 1, MAX_PARTITIONS);
    validateBooleanOption('singleActiveConsumer', options.singleActiveConsumer);
    const partitions = options.partitions ?? 1;
    const record = {
      name,
      durable: options.durable ?? true,
      deadLetterExchange: options.deadLetterExchange,
      deadLetterRoutingKey: options.deadLetterRoutingKey,
      maxDeliveries: options.maxDeliveries,
      ackTimeoutMs: options.ackTimeoutMs,
      messageTtlMs: options.messageTtlMs,
      maxLength: options.maxLength,
      overflow: options.overflow,
      // Stored only when not the default, so that a queue declared before partitions existed
      // and one declared with `partitions: 1` have the same record.
      partitions: partitions === 1 ? undefined : partitions,
      singleActiveConsumer: options.singleActiveConsumer === true ? true : undefined,
    };
    const dlx = options.deadLetterExchange;
    if (
      dlx !== undefined &&
      dlx !== '' &&
      (await this.redis.hexists(this.keys.topologyExchanges, dlx)) === 0
    ) {
      throw new NotFoundError(`dead-letter exchange '${dlx}' does not exist; declare it first`);
    }
    const json = canonicalJson({ ...record });
    // Another partition count is refused before any fence of it is made.
    const existing = await this.redis.hget(this.keys.topologyQueues, name);
    if (existing !== null && existing !== json) throw queueConflict(name, existing, json);
    // The fence first, at a version from before the record: a producer that routes to the
    // queue once the record is there always finds a fence (see ./fences.ts). Declaring an
    // existing queue again makes a fence that was lost, too.
    await this.fences.ensure(name, await this.fences.currentVersion(), partitions);
    const version = await this.declare(this.keys.topologyQueues, 'queue', name, json);
    await this.data.create(name, partitions);
    await this.created(version);
  }

  /** Writes a record; resolves with the new topology version, or 0 when it existed already. */
  private async declare(hash: string, kind: string, name: string, record: string): Promise<number> {
    const [status, value] = await callScript(
      this.redis,
      DECLARE,
      { records: hash, version: this.keys.topologyVersion },
      { name, record },
    );
    if (status === 'precondition') {
      if (kind === 'queue') throw queueConflict(name, String(value), record);
      throw new PreconditionFailedError(
        `${kind} '${name}' exists with different arguments: ${String(value)}, not ${record}`,
      );
    }
    return Number(value);
  }

  /**
   * After a topology script: raises every queue's fence to the new version (`version`, or the
   * current one when the script changed nothing) before the change resolves, and drops this
   * client's cache. A change that found nothing to do raises them too: the same change made
   * by someone else (or by an earlier attempt of this one whose reply was lost) may still be
   * raising them, and this one must not resolve before that is done.
   */
  private async changed(version: number): Promise<number> {
    const raised = version > 0 ? version : await this.fences.currentVersion();
    await this.fences.raiseAll(raised);
    this.onChange();
    return raised;
  }

  /** Like {@link changed}, for a change that only creates: a no-op needs no raise. */
  private async created(version: number): Promise<void> {
    if (version > 0) await this.fences.raiseAll(version);
    this.onChange();
  }

  /** Deletes an exchange and its bindings; deleting an absent exchange is a no-op. */
  async deleteExchange(name: string, options: DeleteExchangeOptions = {}): Promise<void> {
    if (name === '') throw new AccessRefusedError('the default exchange cannot be deleted');
    validateName('exchange', name);
    if (PREDECLARED.has(name)) {
      throw new AccessRefusedError(`exchange '${name}' is predeclared and cannot be deleted`);
    }
    validateOptionsObject('delete options', options, DELETE_EXCHANGE_OPTIONS);
    validateBooleanOption('ifUnused', options.ifUnused);
    const [status, value] = await callScript(
      this.redis,
      DELETE_EXCHANGE,
      {
        exchanges: this.keys.topologyExchanges,
        bindings: this.keys.topologyBindings,
        version: this.keys.topologyVersion,
      },
      { name, ifUnused: options.ifUnused === true ? '1' : '0' },
    );
    if (status === 'in_use') {
      throw new PreconditionFailedError(`exchange '${name}' is in use: ${String(value)} bindings`);
    }
    await this.changed(Number(value));
  }

  /** Deletes a queue, its bindings and its messages; deleting an absent queue is a no-op. */
  async deleteQueue(name: string, options: DeleteQueueOptions = {}): Promise<void> {
    validateName('queue', name);
    validateOptionsObject('delete options', options, DELETE_QUEUE_OPTIONS);
    validateBooleanOption('ifEmpty', options.ifEmpty);
    validateBooleanOption('ifUnused', options.ifUnused);
    const record = await this.queueRecord(name);
    // A delete repeated after the record went (a retry, or a crash between the steps) finds
    // the partitions whose keys are still there.
    const partitions =
      record === undefined ? await this.data.partitionsLeft(name) : partitionCount(record);
    if (options.ifEmpty === true || options.ifUnused === true) {
      const counts = await this.data.counts(name, partitions);
      // Ready messages only, as RabbitMQ's if-empty: unacked deliveries do not count.
      if (options.ifEmpty === true && counts.messages > 0) {
        throw new PreconditionFailedError(
          `queue '${name}' is not empty: ${counts.messages} messages`,
        );
      }
      if (options.ifUnused === true && counts.consumers > 0) {
        throw new PreconditionFailedError(
          `queue '${name}' is in use: ${counts.consumers} consumers`,
        );
      }
    }
    const [, version] = await callScript(
      this.redis,
      DELETE_QUEUE,
      {
        queues: this.keys.topologyQueues,
        bindings: this.keys.topologyBindings,
        version: this.keys.topologyVersion,
      },
      { name },
    );
    // The deleted queue's own fence is no longer among the declared ones: it is raised too,
    // so that until its keys are gone no producer routing with an older topology writes there.
    await this.fences.raise(name, await this.changed(Number(version)), false, partitions);
    await this.data.remove(name, partitions);
  }

  /** The topology version stored in Redis now. */
  currentVersion(): Promise<number> {
    return this.fences.currentVersion();
  }

  /** The record of queue `name`, as stored now; undefined when it is not declared. */
  async queueRecord(name: string): Promise<QueueRecord | undefined> {
    const json = await this.redis.hget(this.keys.topologyQueues, name);
    return json === null ? undefined : (JSON.parse(json) as QueueRecord);
  }

  /**
   * Binds a queue to an exchange with a binding key (direct, topic), nothing (fanout)
   * or header arguments (headers).
   */
  async bindQueue(
    queue: string,
    exchange: string,
    keyOrArguments: string | BindingArguments = '',
  ): Promise<void> {
    validateName('queue', queue);
    await this.bind(await this.binding(exchange, 'queue', queue, keyOrArguments, 'bind'));
  }

  /** Removes a queue binding; removing one that does not exist is a no-op. */
  async unbindQueue(
    queue: string,
    exchange: string,
    keyOrArguments: string | BindingArguments = '',
  ): Promise<void> {
    validateName('queue', queue);
    const binding = await this.binding(exchange, 'queue', queue, keyOrArguments, 'unbind');
    if (binding !== undefined) await this.unbind(binding);
  }

  /** Binds exchange `destination` to exchange `source` (exchange-to-exchange binding). */
  async bindExchange(
    destination: string,
    source: string,
    keyOrArguments: string | BindingArguments = '',
  ): Promise<void> {
    validateName('destination exchange', destination);
    await this.bind(await this.binding(source, 'exchange', destination, keyOrArguments, 'bind'));
  }

  /** Removes an exchange-to-exchange binding; removing one that does not exist is a no-op. */
  async unbindExchange(
    destination: string,
    source: string,
    keyOrArguments: string | BindingArguments = '',
  ): Promise<void> {
    validateName('destination exchange', destination);
    const binding = await this.binding(source, 'exchange', destination, keyOrArguments, 'unbind');
    if (binding !== undefined) await this.unbind(binding);
  }

  /**
   * Validates a binding against its source exchange's type, which is read first. To unbind
   * from an exchange that does not exist is a no-op (undefined), as in RabbitMQ; to bind to a
   * predeclared exchange stores its record first.
   */
  private async binding(
    source: string,
    destinationType: DestinationType,
    destination: string,
    keyOrArguments: string | BindingArguments,
    purpose: 'bind',
  ): Promise<BindingRecord>;
  private async binding(
    source: string,
    destinationType: DestinationType,
    destination: string,
    keyOrArguments: string | BindingArguments,
    purpose: 'unbind',
  ): Promise<BindingRecord | undefined>;
  private async binding(
    source: string,
    destinationType: DestinationType,
    destination: string,
    keyOrArguments: string | BindingArguments,
    purpose: 'bind' | 'unbind',
  ): Promise<BindingRecord | undefined> {
    if (source === '')
      throw new AccessRefusedError('the default exchange cannot be bound or unbound');
    validateName('exchange', source);
    if (typeof keyOrArguments !== 'string') validateBindingArguments(keyOrArguments);
    else validateRoutingKey(keyOrArguments);
    const raw = await this.redis.hget(this.keys.topologyExchanges, source);
    const record = raw === null ? PREDECLARED.get(source) : (JSON.parse(raw) as ExchangeRecord);
    if (record === undefined) {
      if (purpose === 'unbind') return undefined;
      throw new NotFoundError(`exchange '${source}' does not exist`);
    }
    const binding = bindingOf(record.type, source, destinationType, destination, keyOrArguments);
    if (raw === null && purpose === 'bind') await this.storePredeclared(binding);
    return binding;
  }

  /**
   * Stores the record of the predeclared exchange a binding starts from (the bind script finds
   * its source in the exchanges hash), once the binding is valid and its destination exists:
   * a bind that is refused writes nothing.
   */
  private async storePredeclared(binding: BindingRecord): Promise<void> {
    const destinations =
      binding.destinationType === 'queue' ? this.keys.topologyQueues : this.keys.topologyExchanges;
    if ((await this.redis.hexists(destinations, binding.destination)) === 0) {
      throw missingDestination(binding);
    }
    const json = canonicalJson({ ...(PREDECLARED.get(binding.source) as ExchangeRecord) });
    await this.created(
      await this.declare(this.keys.topologyExchanges, 'exchange', binding.source, json),
    );
  }

  private async bind(binding: BindingRecord): Promise<void> {
    const destinationHash =
      binding.destinationType === 'queue' ? this.keys.topologyQueues : this.keys.topologyExchanges;
    const [status, version] = await callScript(
      this.redis,
      BIND,
      {
        exchanges: this.keys.topologyExchanges,
        destinations: destinationHash,
        bindings: this.keys.topologyBindings,
        version: this.keys.topologyVersion,
      },
      { source: binding.source, destination: binding.destination, binding: bindingField(binding) },
    );
    if (status === 'no_source')
      throw new NotFoundError(`exchange '${binding.source}' does not exist`);
    if (status === 'no_destination') throw missingDestination(binding);
    await this.changed(Number(version));
  }

  private async unbind(binding: BindingRecord): Promise<void> {
    const [, version] = await callScript(
      this.redis,
      UNBIND,
      { bindings: this.keys.topologyBindings, version: this.keys.topologyVersion },
      { binding: bindingField(binding) },
    );
    await this.changed(Number(version));
  }

  /**
   * The whole topology at one version, sorted by name: the exchanges (the default exchange and
   * the predeclared `amq.*` ones included), the queues with their arguments, and the bindings
   * (not the implicit ones of the default exchange). One read of the topology's own slot: no
   * scan of the namespace.
   */
  async list(): Promise<TopologyListing> {
    const snapshot = await this.snapshot();
    const byName = (a: { readonly name: string }, b: { readonly name: string }): number =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    return {
      version: snapshot.version,
      exchanges: [DEFAULT_EXCHANGE, ...snapshot.exchanges.values()].sort(byName),
      queues: [...snapshot.queues.values()].sort(byName),
      bindings: [...snapshot.bindings].sort((a, b) => {
        const [x, y] = [bindingField(a), bindingField(b)];
        return x < y ? -1 : x > y ? 1 : 0;
      }),
    };
  }

  /** Reads the whole topology in one transaction, so it is consistent with its version. */
  async snapshot(): Promise<TopologySnapshot> {
    const replies = await this.redis
      .multi()
      .get(this.keys.topologyVersion)
      .hgetall(this.keys.topologyExchanges)
      .hgetall(this.keys.topologyQueues)
      .hkeys(this.keys.topologyBindings)
      .exec();
    if (replies === null) throw new Error('topology transaction was aborted');
    for (const [error] of replies) if (error) throw error;
    const [version, exchanges, queues, bindings] = replies.map(([, value]) => value) as [
      string | null,
      Record<string, string>,
      Record<string, string>,
      string[],
    ];
    return {
      version: Number(version ?? 0),
      exchanges: new Map([
        ...PREDECLARED,
        ...Object.entries(exchanges).map(
          ([name, json]) => [name, JSON.parse(json) as ExchangeRecord] as const,
        ),
      ]),
      queues: new Map(
        Object.entries(queues).map(([name, json]) => [name, JSON.parse(json) as QueueRecord]),
      ),
      bindings: bindings.map(parseBindingField),
    };
  }
}
