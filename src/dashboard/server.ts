import { timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Sluice } from '../sluice.js';
import { apiRoutes, type Route } from './api.js';
import { StatsSampler } from './history.js';
import { HttpError, sendError, sendJson } from './http.js';
import { serveAsset } from './static.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The client the API reads and acts through; the dashboard does not close it. */
  readonly sluice: Sluice;
  /** Address to listen on; 127.0.0.1 unless the operator means to expose it. */
  readonly host: string;
  /** Port to listen on; 0 for any free one. */
  readonly port: number;
  /** Refuse every write action with 403 (and hide them in the UI). */
  readonly readOnly: boolean;
  /** What a write action must carry in the `x-sluice-token` header. */
  readonly token: string;
  /**
   * Host names (besides IP addresses, `localhost` and `host`) that a request's `Host` header may
   * name: the names the operator reaches an exposed dashboard by. Default none.
   */
  readonly allowedHosts?: readonly string[];
}

/** A running dashboard. */
export interface Dashboard {
  /** Where it listens, e.g. `http://127.0.0.1:15672/`. */
  readonly url: string;
  /** Stops listening and sampling. */
  close(): Promise<void>;
}

/** How often queue depths are sampled for the chart, and how many samples it keeps (10 min). */
const SAMPLE_INTERVAL_MS = 2000;
const HISTORY_SAMPLES = 300;
const TOKEN_HEADER = 'x-sluice-token';

/** The built front end, beside this module in the package (dist/dashboard/app). */
const ASSETS = fileURLToPath(new URL('./app/', import.meta.url));

function tokenMatches(request: IncomingMessage, token: string): boolean {
  const given = request.headers[TOKEN_HEADER];
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The host name of a `Host` header (`name:port`, `[v6]:port`), lower-cased; '' if absent. */
function hostName(header: string | undefined): string {
  if (header === undefined) return '';
  const name = header.startsWith('[') ? header.slice(1, header.indexOf(']')) : header.split(':')[0];
  return (name ?? '').toLowerCase();
}

/**
 * Whether a request's `Host` names this server: an IP address, `localhost`, the address it
 * listens on or a name the operator allowed. Anything else is refused, so that a web page that
 * rebinds a name of its own to 127.0.0.1 (DNS rebinding) cannot read the API from the
 * operator's browser.
 */
function hostAllowed(request: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const name = hostName(request.headers.host);
  return isIP(name) !== 0 || name === 'localhost' || allowed.has(name);
}

/**
 * Serves the dashboard: the JSON API under /api/ and the built front end. A request whose `Host`
 * header names another host is refused with 403 (DNS rebinding). A write action (POST) is
 * refused with 403 in read-only mode, and with 401 unless it carries the token; the token
 * travels in a header, which a cross-site form cannot set.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  if (!existsSync(`${ASSETS}index.html`)) {
    throw new Error(
      `the dashboard's front end is not built (no ${ASSETS}index.html): run npm run build`,
    );
  }
  const sampler = new StatsSampler(options.sluice, HISTORY_SAMPLES, SAMPLE_INTERVAL_MS);
  const routes = apiRoutes(options.sluice, sampler, options.readOnly);
  const allowedHosts = new Set(
    [options.host, ...(options.allowedHosts ?? [])].map((name) => name.toLowerCase()),
  );

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (!hostAllowed(request, allowedHosts)) {
      throw new HttpError(
        403,
        `this dashboard does not answer for host '${hostName(request.headers.host)}'`,
      );
    }
    const url = new URL(request.url ?? '/', 'http://dashboard');
    if (!url.pathname.startsWith('/api/')) {
      if (request.method !== 'GET' && request.method !== 'HEAD')
        throw new HttpError(405, 'method not allowed');
      await serveAsset(ASSETS, url.pathname, response);
      return;
    }
    const { route, params } = match(routes, request.method ?? 'GET', url.pathname);
    if (route.write) {
      if (options.readOnly) throw new HttpError(403, 'the dashboard is read-only');
      if (!tokenMatches(request, options.token))
        throw new HttpError(
          401,
          `write actions need the dashboard's token in the ${TOKEN_HEADER} header`,
        );
    }
    sendJson(response, 200, await route.handle(params, request, url.searchParams));
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => sendError(response, error));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    // A port in use, say: nothing must keep the process alive after the command failed.
    sampler.close();
    throw error;
  }

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/`,
    close: async () => {
      sampler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A part of an API path, percent-decoded; malformed encoding is the client's error (400). */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: '${part}'`);
  }
}

/** The route for a request and the parts of its path; 404 or 405 when none. */
function match(
  routes: readonly Route[],
  method: string,
  path: string,
): { route: Route; params: string[] } {
  let pathMatched = false;
  for (const route of routes) {
    const found = route.path.exec(path);
    if (found === null) continue;
    pathMatched = true;
    if (route.method === method) {
      return { route, params: found.slice(1).map(decodePathPart) };
    }
  }
  throw new HttpError(pathMatched ? 405 : 404, pathMatched ? 'method not allowed' : 'no such API');
}
