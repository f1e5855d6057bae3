// The HTTP/2 bounds of an h2 router's servers and clients (RFC 9113 settings, Node's session
// limits), with their defaults: what a hostile peer can make a session cost is bounded here.

/** Defaults of an h2 server's keys (README "Limits and hardening"). */
export const H2_DEFAULTS = {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to each client (Linkerd 1 default: unbounded; RFC 9113 suggests >= 100). */
  maxConcurrentStreamsPerConnection: 1000,
  /** SETTINGS_MAX_FRAME_SIZE: the RFC 9113 minimum (and default). */
  maxFrameBytes: 16_384,
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a header list (HPACK-decoded) larger than this resets the stream. */
  maxHeaderListBytes: 65_536,
  /** SETTINGS_INITIAL_WINDOW_SIZE: what a stream may send before the router reads it (RFC 9113 default). */
  initialStreamWindowBytes: 65_535,
  /** Node's maxSessionMemory: a session over this (buffered frames, HPACK state, streams) refuses new streams. */
  maxSessionMemoryMb: 10,
  /** Streams a client may reset (RST_STREAM) in one session before the session is ended with GOAWAY (rapid reset, CVE-2023-44487). */
  maxResetsPerSession: 1000,
} as const;

/** Header fields in one header list (Node's maxHeaderListPairs); more is a stream error. */
export const MAX_HEADER_PAIRS = 256;
/** SETTINGS frames a peer may leave unacknowledged, and entries in one (Node's maxSettings). */
export const MAX_SETTINGS = 32;
/** PINGs a peer may leave unanswered (Node's maxOutstandingPings). */
export const MAX_OUTSTANDING_PINGS = 10;
/** Invalid frames, and streams refused, before a session is destroyed (Node's maxSessionInvalidFrames / maxSessionRejectedStreams). */
export const MAX_INVALID_FRAMES = 100;
export const MAX_REJECTED_STREAMS = 100;
/** HPACK dynamic table size offered (SETTINGS_HEADER_TABLE_SIZE, RFC 7541 default). */
export const HEADER_TABLE_BYTES = 4096;

/** An h2 server's HTTP/2 keys as configured (Linkerd 1's h2 server keys, plus hostmesh's); unset keys take H2_DEFAULTS. */
export type H2ServerLimits = { readonly [K in keyof typeof H2_DEFAULTS]?: number | undefined };

export type H2Limits = { -readonly [K in keyof typeof H2_DEFAULTS]: number };

export function h2Limits(c: H2ServerLimits | undefined): H2Limits {
  return { ...H2_DEFAULTS, ...(c ?? {}) };
}

/** Streams one client session (to a peer router or a pod) carries at once before more wait for a slot. */
export const CLIENT_SESSION_STREAMS = 1000;
