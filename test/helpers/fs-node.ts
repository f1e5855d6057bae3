// One node's hostmesh config for in-process multi-node tests over an io.l5d.fs namer: an outgoing
// router (daemonset transformer, mTLS to peers, round robin, failure accrual off) and an incoming
// one (localnode, mTLS with client auth). Tests pass what differs: the namer directory, the drain.

import type { HostmeshConfig, RouterConfig } from '../../src/config/types.js';

export interface FsNode {
  readonly name: string;
  readonly ip: string;
}

export interface FsNodeOptions {
  readonly ports: { readonly outgoing: number; readonly incoming: number; readonly admin: number };
  readonly certs: { readonly ca: string; readonly cert: string; readonly key: string };
  /** This node's io.l5d.fs directory (its view of the cluster). */
  readonly rootDir: string;
  readonly baseDir: string;
  readonly shutdownGraceMs: number;
  readonly drainAnnounceMs?: number;
}

/**
 * Round robin, so every other request goes to each peer whatever its state; failure accrual off,
 * since it would skip a failing peer after 5 failures and hide what the test counts (requeues).
 */
export function fsNodeConfig(node: FsNode, o: FsNodeOptions): HostmeshConfig {
  const dtab = '/svc => /#/io.l5d.fs;';
  const outgoing: RouterConfig = {
    protocol: 'http',
    label: 'outgoing',
    dtab,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [{ kind: 'io.l5d.k8s.daemonset', routers: '/#/io.l5d.fs/hostmesh' }],
    servers: [{ ip: node.ip, port: o.ports.outgoing }],
    client: {
      loadBalancer: { kind: 'roundRobin' },
      failureAccrual: { kind: 'none' },
      tls: { commonName: 'hostmesh', trustCerts: [o.certs.ca], clientAuth: { certPath: o.certs.cert, keyPath: o.certs.key } },
    },
    maxHops: 64,
  };
  const incoming: RouterConfig = {
    protocol: 'http',
    label: 'incoming',
    dtab,
    identifier: [{ kind: 'io.l5d.header.token', header: 'Host' }],
    transformers: [{ kind: 'io.l5d.k8s.localnode' }],
    servers: [{ ip: node.ip, port: o.ports.incoming, tls: { certPath: o.certs.cert, keyPath: o.certs.key, caCertPath: o.certs.ca, requireClientAuth: true } }],
    client: { loadBalancer: { kind: 'roundRobin' } },
    maxHops: 64,
  };
  return {
    admin: { ip: node.ip, port: o.ports.admin, allowRemoteShutdown: false },
    namers: [{ kind: 'io.l5d.fs', prefix: '/io.l5d.fs', rootDir: o.rootDir }],
    routers: [outgoing, incoming],
    nodeName: node.name,
    shutdownGraceMs: o.shutdownGraceMs,
    ...(o.drainAnnounceMs !== undefined ? { drainAnnounceMs: o.drainAnnounceMs } : {}),
    baseDir: o.baseDir,
  };
}
