// The character sets of Kubernetes object names (RFC 1123, as the API server validates them), once:
// a DNS label (namespaces, services, port names) and a DNS subdomain (pods, service accounts, nodes).

/** A DNS label: lower case letters, digits and `-`, alphanumeric at both ends, at most 63 characters. */
export const DNS_LABEL = '[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?';

/** A DNS subdomain: as a label but with `.` too, at most 253 characters. */
export const DNS_SUBDOMAIN = '[a-z0-9](?:[-.a-z0-9]{0,251}[a-z0-9])?';

/** A whole DNS subdomain (a Node name, a trust domain such as cluster.local); no `g` flag, so it can be shared. */
export const DNS_SUBDOMAIN_NAME = new RegExp(`^${DNS_SUBDOMAIN}$`);
