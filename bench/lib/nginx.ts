import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CpuLayout, pinned, stopProcess } from './children.js';
import { childPids } from './procfs.js';

export interface Nginx {
  readonly url: string;
  readonly version: string;
  /** Master and workers: CPU is summed over all of them. */
  pids(): number[];
  stop(): Promise<void>;
}

export function nginxBinary(): string | undefined {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    if (r.status === 0) return bin;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * nginx as a keep-alive reverse proxy: one worker (one core, like a Node process), upstream
 * keep-alive pool, access log written to /dev/null (delegate-proxy writes one access line too).
 */
export async function startNginx(bin: string, layout: CpuLayout, upstreamUrl: string): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'dp-bench-nginx-'));
  chmodSync(dir, 0o777);
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub), { mode: 0o777 });
  const port = await freePort();
  const upstream = new URL(upstreamUrl);
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log /dev/null;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream bench_upstream {
    server ${upstream.host};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  const confFile = join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const version = spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr.trim();
  const [cmd, argv] = pinned(layout, layout.sut, bin, ['-p', dir, '-c', confFile]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('nginx did not start');
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (i === 99) throw new Error('nginx did not answer within 10 s');
    await sleep(100);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    version,
    pids: () => [pid, ...childPids(pid)],
    stop: () => stopProcess(child, () => child.kill('SIGTERM')),
  };
}
