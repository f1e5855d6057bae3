// What a Linkerd 1 key that hostmesh accepts without enforcing loses, said in its warning (keyed
// `<object kind>.<key>` as in schema.ts UNENFORCED, `<what>.<option>` for kinds.ts
// UNENFORCED_OPTIONS). Every such key has an entry (test/config/linkerd1-keys.test.ts checks it),
// so `run --check` can say what each warning costs.

export const LOST: Readonly<Record<string, string>> = {
  'root.usage': 'nothing is lost: hostmesh sends no usage data anywhere',
  'root.announcers': 'routers are not announced to ZooKeeper or any other registry',
  'root.tracers': 'no traces are recorded',
  'root.jvm': 'nothing is lost: there is no JVM to tune',

  'admin.httpIdentifierPort': 'no identifier-debugging port is opened',
  'admin.security':
    "Linkerd 1's admin path allow-list is not applied; hostmesh's admin guard (Host/Origin checks, state changes need the hostmesh-admin header) applies instead",
  'admin.workerThreads': 'nothing is lost: Node serves the admin port from one event loop',
  'admin.tls':
    'the admin port serves plain HTTP, not TLS: probes, scrapes and curl must use http:// (it exposes no secret; state changes need the hostmesh-admin header)',
  'admin.socketOptions': 'the admin listener keeps default socket options',

  'namer.experimental': 'nothing is lost: every namer hostmesh builds is enabled without it',
  'namer.enabled': 'the namer is used whatever this says',

  'router.svc': 'the pre-1.0 name of `service`: its settings are not applied (move them under `service`, where they are enforced)',
  'router.tracePropagator': 'no trace propagation or sampling: l5d-ctx-trace and B3 headers pass through untouched, no spans are started',
  'router.maxRequestKB': 'no request body limit: hostmesh streams every body (use the client and server limits)',
  'router.maxResponseKB': 'no response body limit: hostmesh streams every body',
  'router.maxChunkKB': 'no chunk size limit: hostmesh streams chunks as they come',
  'router.streamingEnabled': 'hostmesh always streams bodies; false (buffer whole messages) is not available',
  'router.compressionLevel': 'responses are not compressed by the router (Linkerd 1 gzipped textual responses by default)',
  'router.addForwardedHeader': 'no Forwarded header is added',
  'router.timeoutMs': 'no per-router timeout: use service.totalTimeoutMs and client.requestAttemptTimeoutMs',
  'router.originator': 'nothing is lost: it only changed how Linkerd 1 labelled stats',
  'router.announcers': 'routers are not announced to ZooKeeper or any other registry',
  'router.socketOptions': 'listeners and clients keep default socket options',
  'router.responseClassifier': 'the pre-1.0 place for it: not applied here (put it under service, where it is enforced)',
  'router.retries': 'the pre-1.0 place for it: not applied here (put it under service, where it is enforced)',
  'router.totalTimeoutMs': 'the pre-1.0 place for it: not applied here (put it under service, where it is enforced)',
  'router.requestAuthorizers': "requests are not checked by these authorizers: use hostmesh's authorization policy (docs/authz.md)",
  'router.loggers': 'these request loggers are not run (httpAccessLog is enforced)',
  'router.experimental': 'nothing is lost: http and h2 routers need no experimental flag',
  'router.maxErrResponseKB': 'error responses from upstream are relayed whole (streamed), not cut at this size',

  'server.maxConcurrentRequests': 'no per-server request cap: use client.maxInFlightPerSource / maxInFlightPerService and the admission limits',
  'server.announce': 'this server is not announced anywhere',
  'server.timeoutMs': 'no per-server timeout: use service.totalTimeoutMs and client.requestAttemptTimeoutMs',
  'server.alpnProtocols': "ALPN is the router's own: h2 for protocol: h2 routers, http/1.1 otherwise",
  'server.socketOptions': 'the listener keeps default socket options',
  'server.addForwardedHeader': 'no Forwarded header is added',
  'server.label': 'metrics name a server by ip/port, not by this label',
  'server.timestampHeader': 'no timestamp header is added to requests',
  'server.serverSession': 'connections have no maximum lifetime (serverSession.idleTimeMs is enforced as the idle timeout)',

  'client.retries': 'the pre-1.0 place for it: not applied here (put retries under service, where they are enforced)',
  'client.clientSession': 'idle connections are closed after hostConnectionPool.idleTimeMs instead; there is no maximum lifetime',
  'client.socketOptions': 'connections to endpoints keep default socket options',
  'client.forwardClientCert': 'no x-forwarded-client-cert header: the incoming router sets l5d-client-id to the verified caller instead',
  'client.failFast': 'failed connections are not punished faster: failure accrual and the requeue budget apply as configured',
  'client.requestAuthorizers': "requests are not checked by these authorizers: use hostmesh's authorization policy (docs/authz.md)",

  'h2Server.windowUpdateRatio': "Node's HTTP/2 flow control sends window updates at its own ratio",
  'h2Server.headerTableBytes': "Node's default HPACK table size (4,096 bytes) is advertised",
  'h2Client.initialStreamWindowBytes': "connections to endpoints use Node's default HTTP/2 stream window",
  'h2Client.headerTableBytes': "connections to endpoints use Node's default HPACK table size",
  'h2Client.maxFrameBytes': "connections to endpoints use Node's default maximum frame size",
  'h2Client.maxHeaderListBytes': "connections to endpoints use Node's default header list limit",
  'h2Client.windowUpdateRatio': "Node's HTTP/2 flow control sends window updates at its own ratio",
  'h2Service.classificationTimeoutMs':
    'an answer is classified on its headers (trailers-only gRPC answers) or at its trailers; only one classified on its headers is retried',
  'h2RetryBufferSize.responseBytes': 'response streams are not buffered for retries: an answer with a body is never retried',

  'loadBalancer.maxEffort': 'the balancer picks among live endpoints only, so there is nothing to retry',
  'loadBalancer.decayTimeMs': "ewma's decay window is fixed",
  'loadBalancer.enableProbation': 'an endpoint removed from discovery leaves the balancer at once',
  'transformer.prefix':
    "bound ids keep the namer's form: Linkerd 1 put /%/<prefix> in front of a transformed id, so l5d-dst-client values, rt:client labels and client.configs prefixes written for /%/ ids differ",
  'transformer.k8sHost': "the daemonset's endpoints are read with the io.l5d.k8s namer's API access (its host/port, or in-cluster)",
  'transformer.k8sPort': "the daemonset's endpoints are read with the io.l5d.k8s namer's API access (its host/port, or in-cluster)",
};
