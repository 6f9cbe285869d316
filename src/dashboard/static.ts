import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

/**
 * Serves the built front end from `root` (dist/dashboard/app): `/` is index.html; a path that
 * leaves `root` or names no file is a 404. The assets' names carry a hash of their content
 * (Vite), so they may be cached for good; index.html may not.
 */
export async function serveAsset(
  root: string,
  path: string,
  response: ServerResponse,
): Promise<void> {
  let relative: string;
  try {
    relative = normalize(decodeURIComponent(path === '/' ? '/index.html' : path));
  } catch {
    relative = '';
  }
  const file = join(root, relative);
  if (relative === '' || !file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) {
    response.writeHead(404).end();
    return;
  }
  let content: Buffer;
  try {
    content = await readFile(file);
  } catch {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': relative.startsWith(`${sep}assets${sep}`)
      ? 'public, max-age=31536000, immutable'
      : 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  response.end(content);
}
