// The verified peer identity on the incoming side (design.md): the client certificate's URI SAN
// if any, else its first DNS SAN, else its CN; undefined when the peer is not verified.

import type { TLSSocket } from 'node:tls';

/** Parses Node's `subjectaltname` string (`DNS:a, URI:spiffe://x, IP Address:1.2.3.4`). */
export function parseSans(value: string | undefined): { uris: string[]; dns: string[] } {
  const uris: string[] = [];
  const dns: string[] = [];
  if (value === undefined) return { uris, dns };
  for (const part of value.split(/,\s*/)) {
    if (part.startsWith('URI:')) uris.push(part.slice(4));
    else if (part.startsWith('DNS:')) dns.push(part.slice(4));
  }
  return { uris, dns };
}

/**
 * Identities by connection: a peer keeps its certificate for the connection's life, and
 * getPeerCertificate() builds a new object every call (11% of the incoming router's CPU when done
 * per request, profiled).
 */
const cache = new WeakMap<TLSSocket, string | undefined>();

export function peerIdentity(socket: TLSSocket): string | undefined {
  if (cache.has(socket)) return cache.get(socket);
  const id = readPeerIdentity(socket);
  cache.set(socket, id);
  return id;
}

function readPeerIdentity(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  if (cert === null || Object.keys(cert).length === 0) return undefined;
  const { uris, dns } = parseSans(cert.subjectaltname);
  return uris[0] ?? dns[0] ?? (typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined);
}
