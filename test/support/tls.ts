/**
 * TLS material for tests of TLS connections: a CA and the certificates it signs, made with the
 * `openssl` command line, to pass to startRedisServer's `tls` option and to the client.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findOnPath, type TlsFiles } from '../../scripts/local-redis.js';

const run = promisify(execFile);
/** EC keys: generated in milliseconds, where RSA keys take a noticeable part of a second. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const VALID_DAYS = '2';

/** A key and a certificate for `name` signed by the CA of `dir`, with the `extensions`. */
async function signed(
  dir: string,
  name: string,
  extensions: string[],
  serial: number,
): Promise<void> {
  const file = (suffix: string): string => join(dir, `${name}.${suffix}`);
  await run('openssl', [
    ...['req', '-new', ...NEW_KEY, '-subj', `/CN=sluice-test-${name}`],
    ...['-keyout', file('key'), '-out', file('csr')],
  ]);
  writeFileSync(file('ext'), `${extensions.join('\n')}\n`);
  await run('openssl', [
    ...['x509', '-req', '-in', file('csr'), '-out', file('crt'), '-days', VALID_DAYS],
    ...['-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-set_serial', String(serial)],
    ...['-extfile', file('ext')],
  ]);
}

/**
 * Writes into `dir` a CA (`ca.crt`, `ca.key`), a server certificate it signed for 127.0.0.1 and
 * localhost (`server.crt`, `server.key`) and a client certificate (`client.crt`,
 * `client.key`), valid for two days; resolves with their paths. Needs `openssl` on PATH.
 */
export async function createTlsMaterial(dir: string): Promise<TlsFiles> {
  if (findOnPath('openssl') === undefined) {
    throw new Error('openssl is not on PATH (try: apt-get install openssl)');
  }
  await run('openssl', [
    ...['req', '-x509', ...NEW_KEY, '-days', VALID_DAYS, '-subj', '/CN=sluice-test-ca'],
    ...['-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt')],
    ...['-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  await signed(
    dir,
    'server',
    ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth'],
    1,
  );
  await signed(dir, 'client', ['extendedKeyUsage=clientAuth'], 2);
  return {
    caCertFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
  };
}
