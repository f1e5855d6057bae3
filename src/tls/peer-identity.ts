// The verified peer on the incoming side (design.md): whether a chain-verified client certificate
// may authenticate a client at all, and the identity it names (URI SAN, else first DNS SAN, else CN).

import type { TLSSocket } from 'node:tls';
import { certificateIdentity, certificatePurposeProblem } from './peer-certificate.js';

export type PeerVerdict =
  | { readonly kind: 'verified'; readonly id: string }
  /** No certificate, or one the chain check did not accept (possible only without requireClientAuth). */
  | { readonly kind: 'unverified' }
  /** Chain-verified but unusable: a CA certificate, the wrong purpose, a malformed identity. */
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Verdicts by connection: a peer keeps its certificate for the connection's life, and
 * getPeerCertificate() builds a new object every call (11% of the incoming router's CPU when done
 * per request, profiled).
 */
const cache = new WeakMap<TLSSocket, PeerVerdict>();

export function peerVerdict(socket: TLSSocket): PeerVerdict {
  let v = cache.get(socket);
  if (v === undefined) {
    v = readVerdict(socket);
    cache.set(socket, v);
  }
  return v;
}

/** The verified identity, or undefined (unverified or refused peers have none). */
export function peerIdentity(socket: TLSSocket): string | undefined {
  const v = peerVerdict(socket);
  return v.kind === 'verified' ? v.id : undefined;
}

function readVerdict(socket: TLSSocket): PeerVerdict {
  if (!socket.authorized) return { kind: 'unverified' };
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return { kind: 'unverified' };
  const problem = certificatePurposeProblem(cert, 'client');
  if (problem !== undefined) return { kind: 'refused', reason: problem };
  const id = certificateIdentity(cert.raw, typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined);
  return id.kind === 'ok' ? { kind: 'verified', id: id.id } : { kind: 'refused', reason: id.reason };
}
