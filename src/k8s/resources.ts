// The API paths of the resources hostmesh reads: EndpointSlices (discovery.k8s.io/v1), Services,
// v1 Endpoints (for old clusters), Pods and Nodes. Namespaced ones may be listed cluster-wide.

export interface Resource {
  readonly group: string; // '' is the core group
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

export const ENDPOINT_SLICES: Resource = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', namespaced: true };
export const SERVICES: Resource = { group: '', version: 'v1', plural: 'services', namespaced: true };
export const ENDPOINTS: Resource = { group: '', version: 'v1', plural: 'endpoints', namespaced: true };
export const PODS: Resource = { group: '', version: 'v1', plural: 'pods', namespaced: true };
export const NODES: Resource = { group: '', version: 'v1', plural: 'nodes', namespaced: false };

/** The collection path, e.g. /apis/discovery.k8s.io/v1/namespaces/default/endpointslices. */
export function collectionPath(r: Resource, namespace?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  return r.namespaced && namespace !== undefined ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${base}/${r.plural}`;
}
/** namerd's io.l5d.k8s dtab storage: objects of kind DTab, named after the namerd namespace. */
export const NAMERD_DTABS: Resource = { group: 'l5d.io', version: 'v1alpha1', plural: 'dtabs', namespaced: true };
