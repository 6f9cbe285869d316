import type { IncomingMessage } from 'node:http';
import type { Sluice } from '../sluice.js';
import type { StatsSampler } from './history.js';
import { readJsonBody } from './http.js';
import { readOverview } from './overview.js';
import type { OverviewView } from './types.js';

/** One API route: a method, a path pattern whose groups are its parameters, and its handler. */
export interface Route {
  readonly method: 'GET' | 'POST';
  readonly path: RegExp;
  /** A write action: refused in read-only mode, and without the token. */
  readonly write: boolean;
  readonly handle: (
    params: readonly string[],
    request: IncomingMessage,
    query: URLSearchParams,
  ) => Promise<unknown>;
}

/** How many ready messages a queue's page shows. */
const PEEK_COUNT = 20;

/** A positive integer query parameter, or undefined when absent; sluice validates its range. */
function integerParam(query: URLSearchParams, name: string): number | undefined {
  const value = query.get(name);
  return value === null ? undefined : Number(value);
}

/** The routes of the dashboard's JSON API, on top of the sluice client. */
export function apiRoutes(sluice: Sluice, sampler: StatsSampler, readOnly: boolean): Route[] {
  const queue = '([^/]+)';
  return [
    {
      method: 'GET',
      path: /^\/api\/overview$/u,
      write: false,
      handle: async (): Promise<OverviewView> => ({
        namespace: sluice.namespace,
        server: { name: sluice.server.name, version: sluice.server.version },
        readOnly,
        ...(await readOverview(sluice, sampler.current())),
        history: sampler.history(),
      }),
    },
    {
      method: 'GET',
      path: new RegExp(`^/api/queues/${queue}$`, 'u'),
      write: false,
      handle: async ([name]) => {
        const [info, messages] = await Promise.all([
          sluice.inspectQueue(name as string),
          sluice.peekQueue(name as string, { count: PEEK_COUNT }),
        ]);
        return { info, messages };
      },
    },
    {
      method: 'GET',
      path: new RegExp(`^/api/queues/${queue}/dead-letters$`, 'u'),
      write: false,
      handle: ([name], _request, query) =>
        sluice.dlq.list(name as string, {
          after: query.get('after') ?? undefined,
          count: integerParam(query, 'count'),
        }),
    },
    {
      method: 'GET',
      path: new RegExp(`^/api/queues/${queue}/dead-letters/${queue}$`, 'u'),
      write: false,
      handle: ([name, id]) => sluice.dlq.show(name as string, id as string),
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/queues/${queue}/replay$`, 'u'),
      write: true,
      handle: async ([name], request) => {
        const body = await readJsonBody(request);
        // Handed on as they came: replay validates each and refuses a wrong one (400).
        const result = await sluice.dlq.replay(name as string, {
          viaExchange: body.viaExchange as boolean | undefined,
          toQueue: body.toQueue as string | undefined,
          limit: body.limit as number | undefined,
        });
        return {
          ...result,
          failures: result.failures.map(({ queue: missing, messages, error }) => ({
            queue: missing,
            messages,
            error: { code: error.code, message: error.message },
          })),
        };
      },
    },
    {
      method: 'POST',
      path: new RegExp(`^/api/queues/${queue}/purge$`, 'u'),
      write: true,
      handle: async ([name]) => ({ purged: await sluice.dlq.purge(name as string) }),
    },
  ];
}
