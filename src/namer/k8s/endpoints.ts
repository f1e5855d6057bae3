// Pure: the endpoints a Kubernetes Service port resolves to, from its Service object and its
// EndpointSlices (or its v1 Endpoints). No I/O; the namer feeds it informer state.
//
// Facts from the Kubernetes API reference (discovery.k8s.io/v1 EndpointSlice):
// - `conditions.ready` nil means "unknown", which consumers should treat as ready;
// - `serving` endpoints that are `terminating` may still take traffic; we use them only when no
//   endpoint is ready (as kube-proxy does for its fallback);
// - `addressType` is IPv4, IPv6 or FQDN (FQDN is deprecated and skipped here);
// - `ports[].port` nil means "all ports", which a proxy cannot use: such a port is skipped;
// - a Service's `targetPort` may be a number or the name of a container port, which is the name
//   the slice's port carries.

import type { Endpoint } from '../addr.js';

export interface SlicePort {
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
}

export interface SliceEndpoint {
  readonly addresses?: readonly string[] | null;
  readonly conditions?: { readonly ready?: boolean | null; readonly serving?: boolean | null; readonly terminating?: boolean | null } | null;
  readonly nodeName?: string | null;
  readonly zone?: string | null;
  readonly targetRef?: { readonly name?: string } | null;
}

export interface EndpointSliceObject {
  readonly addressType?: string;
  readonly endpoints?: readonly SliceEndpoint[] | null;
  readonly ports?: readonly SlicePort[] | null;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
}

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
}

export interface ServiceObject {
  readonly spec?: { readonly ports?: readonly ServicePort[] | null } | null;
}

/** What the path's port segment asks for: a slice port name, or a Service port number. */
export type PortRef = { readonly kind: 'name'; readonly name: string } | { readonly kind: 'number'; readonly port: number };

export function parsePortRef(segment: string): PortRef {
  return /^[0-9]+$/.test(segment) ? { kind: 'number', port: Number(segment) } : { kind: 'name', name: segment.toLowerCase() };
}

/**
 * How to pick the port in each slice: by name, or a fixed number. Numbers go through the Service:
 * port -> targetPort (a number, or a name looked up in the slices). Undefined: the Service has no
 * such port.
 */
export type PortPick = { readonly byName: string } | { readonly number: number };

export function pickPort(ref: PortRef, svc: ServiceObject): PortPick | undefined {
  if (ref.kind === 'name') return { byName: ref.name };
  const sp = (svc.spec?.ports ?? []).find((p) => p.port === ref.port && (p.protocol ?? 'TCP') === 'TCP');
  if (sp === undefined) return undefined;
  const target = sp.targetPort ?? sp.port;
  if (typeof target === 'number') return { number: target };
  return /^[0-9]+$/.test(target) ? { number: Number(target) } : { byName: target.toLowerCase() };
}

function slicePort(slice: EndpointSliceObject, pick: PortPick): number | undefined {
  if ('number' in pick) return pick.number;
  for (const p of slice.ports ?? []) {
    if ((p.protocol ?? 'TCP') !== 'TCP' || p.port === undefined || p.port === null) continue;
    if ((p.name ?? '').toLowerCase() === pick.byName) return p.port;
  }
  return undefined;
}

/** The endpoints of all slices of a service: ready ones, or serving terminating ones if none is ready. */
export function sliceEndpoints(slices: Iterable<EndpointSliceObject>, pick: PortPick): Endpoint[] {
  const ready: Endpoint[] = [];
  const fallback: Endpoint[] = [];
  const seen = new Set<string>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const port = slicePort(slice, pick);
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const c = ep.conditions ?? {};
      const isReady = c.ready !== false && c.terminating !== true;
      const isServing = !isReady && c.serving === true;
      if (!isReady && !isServing) continue;
      const meta: Record<string, string> = {};
      if (ep.nodeName) meta['nodeName'] = ep.nodeName;
      if (ep.zone) meta['zone'] = ep.zone;
      if (ep.targetRef?.name) meta['pod'] = ep.targetRef.name;
      for (const host of ep.addresses ?? []) {
        const key = `${host} ${port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        (isReady ? ready : fallback).push({ host, port, meta });
      }
    }
  }
  return ready.length > 0 ? ready : fallback;
}

// --- v1 Endpoints (option `api: endpoints` for clusters without EndpointSlices) ---

export interface EndpointAddress {
  readonly ip: string;
  readonly nodeName?: string;
  readonly targetRef?: { readonly name?: string };
}

export interface EndpointsObject {
  readonly subsets?: readonly { readonly addresses?: readonly EndpointAddress[]; readonly ports?: readonly SlicePort[] }[];
}

/** Ready addresses of a v1 Endpoints object (notReadyAddresses are never used). */
export function endpointsEndpoints(obj: EndpointsObject | undefined, pick: PortPick): Endpoint[] {
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  for (const subset of obj?.subsets ?? []) {
    const port = slicePort({ addressType: 'IPv4', ports: subset.ports ?? [], metadata: { name: '' } }, pick);
    if (port === undefined) continue;
    for (const a of subset.addresses ?? []) {
      const key = `${a.ip} ${port}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const meta: Record<string, string> = {};
      if (a.nodeName) meta['nodeName'] = a.nodeName;
      if (a.targetRef?.name) meta['pod'] = a.targetRef.name;
      out.push({ host: a.ip, port, meta });
    }
  }
  return out;
}
