/**
 * A TCP proxy between a client and a Redis server, for fault tests: it adds latency, black-holes
 * traffic (holds it, as a partitioned network does, and delivers it when the partition heals),
 * and resets a connection after forwarding a request but before its reply reaches the client,
 * which is the case a retrying producer must not turn into a duplicate.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

const HOST = '127.0.0.1';

/** Bytes waiting to go one way, in order, each not before its due time. */
interface Lane {
  readonly to: Socket;
  readonly queue: { chunk: Buffer; dueAt: number }[];
  timer: NodeJS.Timeout | undefined;
}

/** One proxied connection: the client's socket and ours to the server. */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly up: Lane;
  readonly down: Lane;
  /** Set when a request was forwarded that must lose its reply: reset at the reply. */
  resetAtReply: (() => void) | undefined;
}

/** Options of {@link FaultProxy.resetAfterRequest}. */
export interface ResetOptions {
  /** Which client chunk is the request (default: any). */
  readonly match?: (request: Buffer) => boolean;
}

/** A started proxy; see {@link startProxy}. */
export class FaultProxy {
  private readonly pairs = new Set<Pair>();
  private latencyMs = 0;
  private blackholed = false;
  private armed: { match: (request: Buffer) => boolean; done: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
    /** Port of 127.0.0.1 the proxy listens on. */
    readonly port: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `targetPort` there. */
  static async start(targetPort: number): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    return new FaultProxy(server, targetPort, address.port);
  }

  /** `redis://127.0.0.1:<port>` of the proxy. */
  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  /** Connections open through the proxy now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Delays every chunk, both ways, by `ms` from now on (order is kept). */
  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  /**
   * Black-holes (`true`) or heals (`false`) the network: while black-holed, nothing is
   * delivered either way (new connections are accepted and wait too); on healing, what was
   * held is delivered in order.
   */
  blackhole(enabled: boolean): void {
    this.blackholed = enabled;
    if (!enabled)
      for (const pair of this.pairs) for (const lane of [pair.up, pair.down]) this.pump(lane);
  }

  /**
   * Arms a one-shot fault: the next client request (matching `match`) is forwarded to the
   * server; when the server's reply arrives, it is dropped and the client connection is reset.
   * Resolves once that happened, i.e. the server has run the request and the client never got
   * the reply.
   */
  resetAfterRequest(options: ResetOptions = {}): Promise<void> {
    if (this.armed !== undefined) throw new Error('a reset is already armed');
    return new Promise<void>((resolve) => {
      this.armed = { match: options.match ?? (() => true), done: resolve };
    });
  }

  /** Resets every connection now (as a failing network or a restarting middlebox would). */
  resetAll(): void {
    for (const pair of this.pairs) this.drop(pair);
  }

  /** Stops listening and resets what is still open. */
  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: HOST, port: this.targetPort });
    const pair: Pair = {
      client,
      upstream,
      up: { to: upstream, queue: [], timer: undefined },
      down: { to: client, queue: [], timer: undefined },
      resetAtReply: undefined,
    };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      const armed = this.armed;
      if (armed !== undefined && armed.match(chunk)) {
        this.armed = undefined;
        pair.resetAtReply = armed.done;
      }
      this.forward(pair.up, chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      const reset = pair.resetAtReply;
      if (reset === undefined) return this.forward(pair.down, chunk);
      this.drop(pair);
      reset();
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.drop(pair));
      socket.on('close', () => this.drop(pair));
    }
  }

  private forward(lane: Lane, chunk: Buffer): void {
    lane.queue.push({ chunk, dueAt: Date.now() + this.latencyMs });
    this.pump(lane);
  }

  /** Delivers what is due, in order, and comes back for the rest. */
  private pump(lane: Lane): void {
    if (this.blackholed || lane.timer !== undefined) return;
    for (let next = lane.queue[0]; next !== undefined; next = lane.queue[0]) {
      const waitMs = next.dueAt - Date.now();
      if (waitMs > 0) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined;
          this.pump(lane);
        }, waitMs);
        return;
      }
      lane.queue.shift();
      if (!lane.to.destroyed) lane.to.write(next.chunk);
    }
  }

  /** Resets the client side (RST, not FIN) and closes ours. */
  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    for (const lane of [pair.up, pair.down]) {
      clearTimeout(lane.timer);
      lane.queue.length = 0;
    }
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    pair.upstream.destroy();
  }
}

/** A proxy to `targetPort` that is closed when the current test finishes. */
export async function startProxy(targetPort: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.start(targetPort);
  onTestFinished(() => proxy.close());
  return proxy;
}
