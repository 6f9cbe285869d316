/** The dashboard's JSON API as the pages call it, with the write token of this tab. */

const TOKEN_KEY = 'sluice-dashboard-token';

/** An error answer of the API: its code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Takes the token from the page's address (`?token=`, as `sluice dashboard` prints it) into
 * this tab's storage and out of the address bar, so that it is not left in history or a
 * screenshot.
 */
export function adoptToken(): void {
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete('token');
  window.history.replaceState(null, '', url);
}

async function answer<T>(response: Response): Promise<T> {
  const body = (await response.json()) as T & { error?: { code: string; message: string } };
  if (!response.ok) {
    throw new ApiError(
      response.status,
      body.error?.code ?? 'HTTP',
      body.error?.message ?? response.statusText,
    );
  }
  return body;
}

/** GET an API path. */
export async function get<T>(path: string): Promise<T> {
  return answer<T>(await fetch(`api/${path}`, { headers: { accept: 'application/json' } }));
}

/** POST a write action with the tab's token. */
export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  return answer<T>(
    await fetch(`api/${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-sluice-token': sessionStorage.getItem(TOKEN_KEY) ?? '',
      },
      body: JSON.stringify(body),
    }),
  );
}

/** A queue's name as one segment of an API path or a page's address. */
export function segment(name: string): string {
  return encodeURIComponent(name);
}
