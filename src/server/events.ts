// What a listener reports (issue 25): connections, requests, TLS and refusals, through one typed
// interface the metrics module implements (metrics/listener-metrics.ts); a listener without it reports nothing.

/** Socket states that have a deadline (metric label values). */
export type ConnectionState = 'handshake' | 'headers' | 'idle' | 'tunnel_idle' | 'error_answer';

/** Why an accepted connection was closed at once. */
export type ConnectionRefusal = 'listener_limit' | 'source_limit' | 'handshake_limit' | 'not_local' | 'unknown_source' | 'too_many_waiting';

export interface ListenerEvents {
  /** A request arrived (in flight until `done`). */
  started(): void;
  /**
   * A request finished: `service` the logical name, `client` the bound id (if it got that far),
   * `server` the listener as Linkerd 1 labelled it (`<ip>/<port>`).
   */
  done(service: string | undefined, client: string | undefined, status: number, seconds: number, server?: string): void;
  connectionOpened(side: 'server' | 'client'): void;
  /** Bytes are counted for the server side (from and to clients). */
  connectionClosed(side: 'server' | 'client', bytesIn: number, bytesOut: number): void;
  /** A verified peer router (client certificate identity) connected, or left. */
  peerConnected(identity: string): void;
  peerDisconnected(identity: string): void;
  /** A TLS handshake refused, by reason. */
  tlsFailure(reason: string): void;
  /** An accepted connection closed at once because a cap was reached or its source is not admitted. */
  connectionRefused(reason: ConnectionRefusal): void;
  /** A connection closed because the deadline of the state it was in passed. */
  connectionDeadline(state: ConnectionState): void;
  /** A request refused with 431 for having more header fields than maxHeaders. */
  tooManyHeaders(): void;
  /** A connection was no longer read: maxPipelinedRequests of its requests were queued. */
  pipelinePaused(): void;
  /** Queued pipelined requests of a connection that closed, dropped without being sent. */
  pipelineDropped(n: number): void;
}
