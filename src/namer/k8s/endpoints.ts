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
  return exact(ready.length > 0 ? ready : fallback);
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
  return exact(out);
}

// --- projections: what the namer keeps of each object (the rest is dropped as it arrives) ---

/** An address refused from discovery data, for the once-per-object log line. */
export interface RefusedAddress {
  readonly address: string;
  readonly reason: string;
}

export type AddressCheck = (
  address: string,
  family?: 'IPv4' | 'IPv6',
) => { readonly ok: true; readonly host: string } | { readonly ok: false; readonly reason: string };

interface Meta {
  readonly name: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly labels?: Record<string, string>;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/**
 * An array built by push() at its exact length: V8 grows a pushed-to array to 17 slots at its
 * first push, so a one-address endpoint kept in an informer's cache held 152 bytes of elements
 * for 8 bytes of use (issue 28: 0.8 MB at 5,000 endpoints). Projections are kept; a copy once per
 * object version costs nothing per request.
 */
export function exact<T>(a: T[]): T[] {
  return a.length === 0 ? [] : a.slice();
}

type Condition = boolean | null;
/** The 27 possible conditions of an endpoint, shared (read-only) by every endpoint with the same ones. */
const CONDITIONS = new Map<string, { readonly ready: Condition; readonly serving: Condition; readonly terminating: Condition }>();
function conditionsOf(
  ready: Condition,
  serving: Condition,
  terminating: Condition,
): { readonly ready: Condition; readonly serving: Condition; readonly terminating: Condition } {
  const key = `${ready} ${serving} ${terminating}`;
  let c = CONDITIONS.get(key);
  if (c === undefined) {
    c = Object.freeze({ ready, serving, terminating });
    CONDITIONS.set(key, c);
  }
  return c;
}

/** name, namespace, resourceVersion and only the listed labels (a tenant's labels can be large). */
export function projectMeta(raw: { metadata: Record<string, unknown> }, keepLabels: readonly string[] = []): Meta {
  const m = raw.metadata;
  const labels: Record<string, string> = {};
  const all = rec(m['labels']);
  for (const k of keepLabels) {
    const v = str(all[k]);
    if (v !== undefined) labels[k] = v;
  }
  const namespace = str(m['namespace']);
  const resourceVersion = str(m['resourceVersion']);
  return {
    name: str(m['name']) ?? '',
    ...(namespace !== undefined ? { namespace } : {}),
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    ...(keepLabels.length > 0 ? { labels } : {}),
  };
}

function projectPorts(v: unknown): SlicePort[] {
  return arr(v).map((p) => {
    const r = rec(p);
    const name = str(r['name']);
    const port = typeof r['port'] === 'number' ? r['port'] : null;
    const protocol = str(r['protocol']);
    return { ...(name !== undefined ? { name } : {}), port, ...(protocol !== undefined ? { protocol } : {}) };
  });
}

/**
 * An EndpointSlice reduced to what binding reads, every address checked: refused ones are left
 * out (and reported once, here), accepted ones spelled canonically.
 */
export function projectSlice(
  raw: { metadata: Record<string, unknown>; [k: string]: unknown },
  check: AddressCheck,
  keepLabels: readonly string[],
): { slice: EndpointSliceObject & { metadata: Meta }; refused: RefusedAddress[] } {
  const refused: RefusedAddress[] = [];
  const addressType = str(raw['addressType']);
  const family = addressType === 'IPv4' || addressType === 'IPv6' ? addressType : undefined;
  const endpoints: SliceEndpoint[] = [];
  if (family !== undefined) {
    for (const e of arr(raw['endpoints'])) {
      const r = rec(e);
      const addresses: string[] = [];
      for (const a of arr(r['addresses'])) {
        const text = String(a);
        const v = check(text, family);
        if (v.ok) addresses.push(v.host);
        else refused.push({ address: text.slice(0, 64), reason: v.reason });
      }
      if (addresses.length === 0) continue;
      const c = rec(r['conditions']);
      const bool = (k: string): boolean | null => (typeof c[k] === 'boolean' ? (c[k] as boolean) : null);
      const nodeName = str(r['nodeName']);
      const zone = str(r['zone']);
      const pod = str(rec(r['targetRef'])['name']);
      endpoints.push({
        addresses: exact(addresses),
        conditions: conditionsOf(bool('ready'), bool('serving'), bool('terminating')),
        ...(nodeName !== undefined ? { nodeName } : {}),
        ...(zone !== undefined ? { zone } : {}),
        ...(pod !== undefined ? { targetRef: { name: pod } } : {}),
      });
    }
  }
  return {
    slice: {
      metadata: projectMeta(raw, keepLabels),
      ...(addressType !== undefined ? { addressType } : {}),
      endpoints: exact(endpoints),
      ports: projectPorts(raw['ports']),
    },
    refused,
  };
}

/** A v1 Endpoints object reduced the same way (ready addresses only: notReadyAddresses are never used). */
export function projectEndpoints(
  raw: { metadata: Record<string, unknown>; [k: string]: unknown },
  check: AddressCheck,
  keepLabels: readonly string[],
): { endpoints: EndpointsObject & { metadata: Meta }; refused: RefusedAddress[] } {
  const refused: RefusedAddress[] = [];
  const subsets = arr(raw['subsets']).map((s) => {
    const r = rec(s);
    const addresses: EndpointAddress[] = [];
    for (const a of arr(r['addresses'])) {
      const ar = rec(a);
      const text = String(ar['ip'] ?? '');
      const v = check(text);
      if (!v.ok) {
        refused.push({ address: text.slice(0, 64), reason: v.reason });
        continue;
      }
      const nodeName = str(ar['nodeName']);
      const pod = str(rec(ar['targetRef'])['name']);
      addresses.push({ ip: v.host, ...(nodeName !== undefined ? { nodeName } : {}), ...(pod !== undefined ? { targetRef: { name: pod } } : {}) });
    }
    return { addresses: exact(addresses), ports: projectPorts(r['ports']) };
  });
  return { endpoints: { metadata: projectMeta(raw, keepLabels), subsets }, refused };
}

/** A Service reduced to its ports. */
export function projectService(raw: { metadata: Record<string, unknown>; [k: string]: unknown }): ServiceObject & { metadata: Meta } {
  const ports: ServicePort[] = [];
  for (const p of arr(rec(raw['spec'])['ports'])) {
    const r = rec(p);
    if (typeof r['port'] !== 'number') continue;
    const name = str(r['name']);
    const protocol = str(r['protocol']);
    const t = r['targetPort'];
    ports.push({
      port: r['port'],
      ...(name !== undefined ? { name } : {}),
      ...(protocol !== undefined ? { protocol } : {}),
      ...(typeof t === 'number' || typeof t === 'string' ? { targetPort: t } : {}),
    });
  }
  return { metadata: projectMeta(raw), spec: { ports: exact(ports) } };
}
