// nginx for the benchmark: the trivial backend every row uses, and the two-hop nginx mesh
// (plaintext in, mutual TLS between the hops, keep-alive upstream pools, one worker each),
// configured the way an operator would do it with nginx.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';

export interface Nginx {
  readonly pid: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

function common(dir: string, name: string, workers = 1): string {
  const tmp = join(dir, `${name}-tmp`);
  mkdirSync(tmp, { recursive: true, mode: 0o777 });
  return `worker_processes ${workers};
daemon off;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}-error.log`)} warn;
events { worker_connections 4096; }
`;
}

function httpCommon(dir: string, name: string): string {
  const tmp = join(dir, `${name}-tmp`);
  return `access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  keepalive_requests 1000000;`;
}

export function backendConf(dir: string, ip: string, port: number, bigFile: string): string {
  return `${common(dir, 'backend')}
http {
  ${httpCommon(dir, 'backend')}
  server {
    listen ${ip}:${port} reuseport backlog=4096;
    location = /big { alias ${bigFile}; default_type application/octet-stream; }
    location / { default_type text/plain; return 200 "hello world\\n"; }
  }
}
`;
}

export interface Tls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * One plaintext hop (the cores table): `workers` worker processes sharing the listening socket the
 * way `worker_processes auto` does (no reuseport: the workers take connections from one socket),
 * keep-alive to the backend.
 */
export function proxyConf(dir: string, name: string, workers: number, listen: { ip: string; port: number }, backend: { ip: string; port: number }): string {
  return `${common(dir, name, workers)}
http {
  ${httpCommon(dir, name)}
  upstream backend { server ${backend.ip}:${backend.port}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen ${listen.ip}:${listen.port} backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
    }
  }
}
`;
}

/** Hop A: plaintext in, TLS with a client certificate to hop B, verifying B as `hostmesh`. */
export function outgoingConf(dir: string, listen: { ip: string; port: number }, peer: { ip: string; port: number }, tls: Tls): string {
  return `${common(dir, 'nginx-a')}
http {
  ${httpCommon(dir, 'nginx-a')}
  upstream peer { server ${peer.ip}:${peer.port}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen ${listen.ip}:${listen.port} backlog=4096;
    location / {
      proxy_pass https://peer;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
      proxy_ssl_certificate ${tls.cert};
      proxy_ssl_certificate_key ${tls.key};
      proxy_ssl_trusted_certificate ${tls.ca};
      proxy_ssl_verify on;
      proxy_ssl_name hostmesh;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
`;
}

/** Hop B: TLS in, client certificate required and verified, plaintext keep-alive to the backend. */
export function incomingConf(dir: string, listen: { ip: string; port: number }, backend: { ip: string; port: number }, tls: Tls): string {
  return `${common(dir, 'nginx-b')}
http {
  ${httpCommon(dir, 'nginx-b')}
  upstream backend { server ${backend.ip}:${backend.port}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen ${listen.ip}:${listen.port} ssl backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_client_certificate ${tls.ca};
    ssl_verify_client on;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
    }
  }
}
`;
}

async function waitForPort(ip: string, port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, ip, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${ip}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startNginx(dir: string, name: string, conf: string, listen: { ip: string; port: number }): Promise<Nginx> {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, conf);
  const child = spawn('nginx', ['-c', file, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(listen.ip, listen.port);
  return {
    pid: child.pid ?? 0,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGQUIT');
      }),
  };
}
