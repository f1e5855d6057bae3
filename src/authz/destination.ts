// The policy's view of a bound name: a Kubernetes service name (/#/io.l5d.k8s/<ns>/<port>/<svc>,
// as the k8s namer binds it) carries namespace, service and port; any other name is just a name.

import type { AuthzDestination } from './policy.js';

/** `prefix`: where the k8s namer is mounted under /# (its `prefix` config, default /io.l5d.k8s). */
export function destinationFromName(name: string, prefix = '/io.l5d.k8s'): AuthzDestination {
  const head = `/#${prefix}/`;
  if (!name.startsWith(head)) return { name };
  const [namespace, port, service] = name.slice(head.length).split('/');
  if (namespace === undefined || namespace === '' || port === undefined || port === '' || service === undefined || service === '') return { name };
  return { namespace, service, port: /^[0-9]{1,5}$/.test(port) ? Number(port) : port, name };
}
