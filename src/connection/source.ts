/**
 * Where Redis is, as {@link Sluice.connect} takes it: a URL, a Redis Cluster's seed nodes, the
 * Sentinels of a monitored primary, or a client the application made. Validated here, and
 * turned into the ioredis client sluice creates (and so will close).
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '../errors/index.js';
import {
  hasMethods,
  optionNames,
  validateArray,
  validateOptionsObject,
  validateStringOption,
} from '../validation/index.js';
import { ignoreError, type RedisClient } from './client.js';
import { ClosingSentinelConnector } from './sentinel-connector.js';

/** One server: a Cluster seed node or a Sentinel. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * TLS to the Redis servers (for a `rediss://` URL, on top of what the URL implies): the CA that
 * signed the servers' certificates, and a client certificate and key when the servers ask for
 * one (`tls-auth-clients`). PEM text or Buffers, as Node's `tls.connect` takes them.
 */
export interface TlsOptions {
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** The name to check the server's certificate against, when it is not the host connected to. */
  readonly servername?: string | undefined;
  /** Accept a certificate no CA vouches for. Default false; for tests, never production. */
  readonly rejectUnauthorized?: boolean | undefined;
}

/**
 * Who sluice is to the servers: an ACL user (`username`, `password`; for a URL they may be in
 * it instead) and TLS. For Sentinel they apply to the data servers; `sentinelPassword` (and
 * `sentinelUsername`) to the Sentinels.
 */
export interface ServerCredentials {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly tls?: TlsOptions | undefined;
  readonly sentinelUsername?: string | undefined;
  readonly sentinelPassword?: string | undefined;
}

/** Where Redis is: exactly one of `url`, `redis`, `cluster`, or `sentinels` with `name`. */
export type ServerLocation =
  | { readonly url: string }
  | { readonly redis: RedisClient }
  | { readonly cluster: readonly ServerAddress[] }
  | { readonly sentinels: readonly ServerAddress[]; readonly name: string };

/** The option names of every form of {@link ServerLocation} and of {@link ServerCredentials}. */
export const LOCATION_OPTIONS = optionNames<
  {
    readonly url: string;
    readonly redis: RedisClient;
    readonly cluster: readonly ServerAddress[];
    readonly sentinels: readonly ServerAddress[];
    readonly name: string;
  } & ServerCredentials
>({
  url: true,
  redis: true,
  cluster: true,
  sentinels: true,
  name: true,
  username: true,
  password: true,
  tls: true,
  sentinelUsername: true,
  sentinelPassword: true,
});

const TLS_OPTIONS = optionNames<TlsOptions>({
  ca: true,
  cert: true,
  key: true,
  servername: true,
  rejectUnauthorized: true,
});

/** How to reach Redis, validated: what {@link createClient} builds a client from. */
export type RedisSource =
  | { readonly kind: 'url'; readonly url: string; readonly credentials: ServerCredentials }
  | { readonly kind: 'adopted'; readonly redis: RedisClient }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly ServerAddress[];
      readonly credentials: ServerCredentials;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly ServerAddress[];
      readonly name: string;
      readonly credentials: ServerCredentials;
    };

/**
 * An ioredis client (Redis or Cluster), checked by shape rather than `instanceof`: an
 * application and sluice may each have their own copy of ioredis.
 */
function looksLikeIoredis(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    hasMethods(value, ['defineCommand', 'duplicate', 'callBuffer', 'info', 'multi'])
  );
}

function validateAddresses(name: string, value: unknown): asserts value is ServerAddress[] {
  validateArray(name, value);
  if (value.length === 0 || value.length > 64) {
    throw new InvalidArgumentError(`${name} must list 1 to 64 servers`);
  }
  value.forEach((address, i) => {
    const where = `${name}[${i}]`;
    validateOptionsObject(where, address, ADDRESS_OPTIONS);
    const { host, port } = (address ?? {}) as Partial<ServerAddress>;
    if (address === undefined || typeof host !== 'string' || host.length === 0) {
      throw new InvalidArgumentError(`${where}.host must be a non-empty string`);
    }
    validateStringOption(`${where}.host`, host);
    if (typeof port !== 'number' || !Number.isSafeInteger(port) || port < 1 || port > 65_535) {
      throw new InvalidArgumentError(`${where}.port must be an integer from 1 to 65535`);
    }
  });
}

const ADDRESS_OPTIONS = optionNames<ServerAddress>({ host: true, port: true });

function validatePem(name: string, value: unknown): void {
  if (value === undefined || Buffer.isBuffer(value)) return;
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${name} must be a non-empty string or a Buffer`);
  }
}

function validateCredentials(options: ServerCredentials): void {
  for (const name of ['username', 'sentinelUsername'] as const) {
    validateStringOption(name, options[name]);
  }
  for (const name of ['password', 'sentinelPassword'] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
      throw new InvalidArgumentError(`${name} must be a non-empty string`);
    }
  }
  const { tls } = options;
  validateOptionsObject('tls', tls, TLS_OPTIONS);
  if (tls === undefined) return;
  validatePem('tls.ca', tls.ca);
  validatePem('tls.cert', tls.cert);
  validatePem('tls.key', tls.key);
  validateStringOption('tls.servername', tls.servername);
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw new InvalidArgumentError('tls.rejectUnauthorized must be a boolean');
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new InvalidArgumentError('tls.cert and tls.key go together: give both or neither');
  }
}

/**
 * Checks where Redis is (`options` already checked as plain data with known names only) and
 * returns it as a source: exactly one of the forms of {@link ServerLocation}, with credentials
 * only where sluice creates the client.
 */
export function serverSource(options: ServerLocation & ServerCredentials): RedisSource {
  const given = (['url', 'redis', 'cluster', 'sentinels'] as const).filter(
    (name) => (options as unknown as Record<string, unknown>)[name] !== undefined,
  );
  if (given.length !== 1) {
    throw new InvalidArgumentError(
      given.length === 0
        ? 'connect needs one of url, redis, cluster or sentinels'
        : `connect takes one of url, redis, cluster or sentinels, not ${given.join(' and ')}`,
    );
  }
  const values = options as unknown as Partial<Record<string, unknown>>;
  if (values.name !== undefined && given[0] !== 'sentinels') {
    throw new InvalidArgumentError('name (the monitored primary) goes with sentinels only');
  }
  validateCredentials(options);
  const credentials: ServerCredentials = options;
  switch (given[0]) {
    case 'redis': {
      if (!looksLikeIoredis(values.redis)) {
        throw new InvalidArgumentError('redis must be an ioredis Redis or Cluster client');
      }
      const forCreated = (['username', 'password', 'tls'] as const).filter(
        (name) => options[name] !== undefined,
      );
      if (forCreated.length > 0) {
        throw new InvalidArgumentError(
          `${forCreated.join(', ')}: set on the client you pass as redis, not here`,
        );
      }
      return { kind: 'adopted', redis: values.redis };
    }
    case 'cluster':
      validateAddresses('cluster', values.cluster);
      return { kind: 'cluster', nodes: values.cluster, credentials };
    case 'sentinels':
      validateAddresses('sentinels', values.sentinels);
      validateStringOption('name', values.name);
      if (values.name === undefined) {
        throw new InvalidArgumentError('sentinels need name: the primary they monitor');
      }
      return { kind: 'sentinel', sentinels: values.sentinels, name: values.name, credentials };
    default: {
      const url = values.url;
      if (typeof url !== 'string' || !/^rediss?:\/\//u.test(url)) {
        throw new InvalidArgumentError('url must be a redis:// or rediss:// URL');
      }
      return { kind: 'url', url, credentials };
    }
  }
}

/**
 * Reconnect delays of the clients sluice creates: 10 ms first, doubling up to 2 s, with
 * jitter, so that a reset connection is back before a retried publish needs it, and a
 * restarting server is not hammered.
 */
function reconnectDelayMs(attempt: number): number {
  const base = Math.min(10 * 2 ** Math.min(attempt - 1, 8), 2000);
  return Math.round(base / 2 + Math.random() * (base / 2));
}

function serverOptions(credentials: ServerCredentials, connectTimeoutMs: number): RedisOptions {
  const { username, password, tls } = credentials;
  return {
    lazyConnect: true,
    connectTimeout: connectTimeoutMs,
    // Publishes are idempotent (dedup markers), so resending what was in flight at a
    // connection loss is exactly the retry they need; ioredis drops (never settles) those
    // commands when this is off. Stated here because sluice relies on it.
    autoResendUnfulfilledCommands: true,
    // No commandTimeout: WAIT, WAITAOF and the consumers' blocking reads legitimately take
    // long; each publish is bounded by its own confirm deadline instead.
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls === undefined ? {} : { tls: { ...tls } }),
  };
}

/**
 * The client sluice creates for `source` (not connected yet; `lazyConnect`), or the adopted
 * one. Errors reach callers as rejected commands; the 'error' listener keeps ioredis from
 * logging them too.
 */
export function createClient(
  source: Exclude<RedisSource, { kind: 'adopted' }>,
  connectTimeoutMs: number,
): RedisClient {
  const options = serverOptions(source.credentials, connectTimeoutMs);
  let client: RedisClient;
  switch (source.kind) {
    case 'cluster': {
      const clusterOptions: ClusterOptions = {
        lazyConnect: true,
        // Node connections: the pool creates them lazily whatever these say.
        redisOptions: options,
        clusterRetryStrategy: reconnectDelayMs,
        // MOVED, ASK, TRYAGAIN and CLUSTERDOWN during a resharding or failover are retried by
        // ioredis itself (a command that met them did not run); a command whose node closed
        // is sent again once the slots are refreshed, which for sluice's scripts is safe
        // (their effects are idempotent under message and entry ids).
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        retryDelayOnTryAgain: 100,
        maxRedirections: 32,
        slotsRefreshTimeout: Math.min(connectTimeoutMs, 2000),
        ...(source.credentials.tls === undefined
          ? {}
          : // Certificates name the hosts given; keep them rather than resolved addresses.
            { dnsLookup: (address, done) => done(null, address) }),
      };
      client = new Cluster(
        source.nodes.map(({ host, port }) => ({ host, port })),
        clusterOptions,
      );
      break;
    }
    case 'sentinel': {
      const { sentinelUsername, sentinelPassword } = source.credentials;
      let connected = false;
      client = new Redis({
        ...options,
        sentinels: source.sentinels.map(({ host, port }) => ({ host, port })),
        name: source.name,
        ...(sentinelUsername === undefined ? {} : { sentinelUsername }),
        ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
        // Without it, ioredis ignores `tls` for the servers the Sentinels name and connects to
        // them in plain TCP; the Sentinels themselves stay plain (its `sentinelTLS`).
        ...(source.credentials.tls === undefined ? {} : { enableTLSForSentinelMode: true }),
        retryStrategy: reconnectDelayMs,
        // Until the first connection, one round over the Sentinels: when none answers (or none
        // knows the primary) connect fails at once and says why, as for a URL that refuses.
        // Once connected, retrying for good: giving up would end the client.
        sentinelRetryStrategy: (attempt) => (connected ? reconnectDelayMs(attempt) : null),
        // Learn of a failover from the Sentinels' +switch-master at once, rather than when the
        // old primary's connection fails; the connector keeps that from ending a client that is
        // reconnecting when the news comes (see ClosingSentinelConnector).
        failoverDetector: true,
        Connector: ClosingSentinelConnector,
        // A demoted primary answers writes with READONLY: reconnect, which asks the Sentinels
        // for the primary again; the command fails with READONLY, which sluice retries.
        reconnectOnError: (error) => error.message.startsWith('READONLY'),
      });
      client.once('ready', () => (connected = true));
      break;
    }
    default:
      client = new Redis(source.url, {
        ...options,
        retryStrategy: reconnectDelayMs,
        // A failover turns the master into a replica: reconnect (the address may lead to the
        // new master by now) and let the command fail with READONLY, which sluice retries.
        reconnectOnError: (error) => error.message.startsWith('READONLY'),
      });
  }
  client.on('error', ignoreError);
  return client;
}
