// What h2 routers report (issue 25), implemented by the metrics module (metrics/h2-metrics.ts):
// client sessions opened and closed, gRPC answers by status, and sessions the router ended.

/** Why an h2 router ended a session itself (GOAWAY). */
export type SessionEnd = 'rapid_reset' | 'idle' | 'drain' | 'protocol_error' | 'session_memory';

/** Client sessions to endpoints (h2-sessions.ts). */
export interface H2SessionEvents {
  connect(): void;
  disconnect(): void;
}

/** One h2 router's answers and server sessions. */
export interface H2Events {
  grpcAnswered(service: string | undefined, status: string): void;
  sessionEnded(reason: SessionEnd): void;
}
