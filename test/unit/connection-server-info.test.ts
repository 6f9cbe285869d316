import { describe, expect, it } from 'vitest';
import { parseServerInfo } from '../../src/connection/connection.js';

/** INFO lines are CRLF-terminated; sections start with `# Name` and end with an empty line. */
const info = (...lines: string[]): string => `${lines.join('\r\n')}\r\n`;

// Excerpts of `INFO server persistence` as the servers answer it (what Connection.open sends).
const REDIS_7_0 = info(
  '# Server',
  'redis_version:7.0.15',
  'redis_git_sha1:00000000',
  'redis_build_id:ae4d7c971a948f0',
  'redis_mode:standalone',
  'os:Linux 6.1.0 x86_64',
  'tcp_port:6379',
  'executable:/usr/bin/redis-server',
  'config_file:',
  '',
  '# Persistence',
  'loading:0',
  'aof_enabled:0',
);
const REDIS_7_2 = info(
  '# Server',
  'redis_version:7.2.4',
  'redis_git_sha1:00000000',
  'redis_build_id:d2c8a4b91e5c3b2f',
  'redis_mode:standalone',
  'tcp_port:6379',
  'listener0:name=tcp,bind=*,bind=-::*,port=6379',
  '',
  '# Persistence',
  'aof_enabled:1',
);
const VALKEY_8 = info(
  '# Server',
  'redis_version:7.2.4',
  'server_name:valkey',
  'valkey_version:8.0.1',
  'redis_git_sha1:00000000',
  'server_mode:standalone',
  'tcp_port:6379',
  'availability_zone:',
  'listener0:name=tcp,bind=*,bind=-::*,port=6379',
  '',
  '# Persistence',
  'aof_enabled:0',
);

describe('parseServerInfo (INFO server → name, version, features)', () => {
  const servers = [
    ['Redis 7.0: no WAITAOF, no XACKDEL, no idempotent XADD', REDIS_7_0, 'redis', '7.0.15', false],
    ['Redis 7.2: WAITAOF', REDIS_7_2, 'redis', '7.2.4', true],
    [
      'Valkey 8 by its own version, not the Redis version it reports',
      VALKEY_8,
      'valkey',
      '8.0.1',
      true,
    ],
  ] as const;
  it.for(servers)('reads %s', ([, text, name, version, waitAof]) => {
    expect(parseServerInfo(text)).toEqual({
      name,
      cluster: false,
      version,
      features: { waitAof, xackdel: false, idempotentXadd: false },
    });
  });

  it('tells a cluster-mode server (cluster_enabled:1, even one node) from a standalone one', () => {
    expect(parseServerInfo(info('redis_version:7.0.15', 'cluster_enabled:1')).cluster).toBe(true);
    expect(parseServerInfo(info('redis_version:7.0.15', 'cluster_enabled:0')).cluster).toBe(false);
    expect(parseServerInfo(info('valkey_version:8.0.1', 'cluster_enabled:1')).cluster).toBe(true);
  });

  it('knows a Valkey that reports only server_name, with its redis_version as version', () => {
    const valkey72 = info('# Server', 'redis_version:7.2.4', 'server_name:valkey');
    expect(parseServerInfo(valkey72)).toMatchObject({ name: 'valkey', version: '7.2.4' });
    expect(parseServerInfo(valkey72).features.waitAof).toBe(true);
  });

  it('turns on XACKDEL from Redis 8.2 and idempotent XADD from Redis 8.6', () => {
    const features = (version: string): unknown =>
      parseServerInfo(info(`redis_version:${version}`)).features;
    expect(features('8.0.2')).toEqual({ waitAof: true, xackdel: false, idempotentXadd: false });
    expect(features('8.2.0')).toEqual({ waitAof: true, xackdel: true, idempotentXadd: false });
    expect(features('8.6.0')).toEqual({ waitAof: true, xackdel: true, idempotentXadd: true });
  });

  it('compares versions as numbers, not as text', () => {
    expect(parseServerInfo(info('redis_version:7.10.0')).features.waitAof).toBe(true);
    expect(parseServerInfo(info('redis_version:6.2.14')).features.waitAof).toBe(false);
    expect(parseServerInfo(info('redis_version:10.0.0')).features).toEqual({
      waitAof: true,
      xackdel: true,
      idempotentXadd: true,
    });
  });

  it('reads LF line endings as well as CRLF', () => {
    expect(parseServerInfo(VALKEY_8.replaceAll('\r\n', '\n'))).toEqual(parseServerInfo(VALKEY_8));
    expect(parseServerInfo(REDIS_7_2.replaceAll('\r\n', '\n')).version).toBe('7.2.4');
  });

  it('assumes no feature when INFO has no version', () => {
    expect(parseServerInfo(info('# Server', 'tcp_port:6379'))).toEqual({
      name: 'redis',
      cluster: false,
      version: '0.0.0',
      features: { waitAof: false, xackdel: false, idempotentXadd: false },
    });
  });
});
