/**
 * What one client of the KMS socket may hold, so that idle, slow or hostile peers cannot exhaust the
 * server (file descriptors, memory) while kube-apiserver still gets its calls through.
 */
export interface ConnectionLimits {
  /** Connections open at once. At the cap a new connection is admitted and the least active one closed. */
  readonly maxConnections: number;
  /** A connection must send the HTTP/2 connection preface within this time, or it is closed. */
  readonly handshakeTimeoutMs: number;
  /**
   * A connection with no call in flight for this long is closed with a GOAWAY. Longer than the 60 s
   * between the apiserver's Status polls, so its connection stays up; a client reconnects when it needs to.
   */
  readonly idleTimeoutMs: number;
  /** Calls in flight at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 64,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxConcurrentStreams: 1024,
};

/** The limits as the config file states them (`socket.limits`, in seconds). */
export function connectionLimitsFromConfig(limits: {
  readonly maxConnections: number;
  readonly handshakeTimeoutSeconds: number;
  readonly idleTimeoutSeconds: number;
  readonly maxConcurrentStreams: number;
}): ConnectionLimits {
  return {
    maxConnections: limits.maxConnections,
    handshakeTimeoutMs: limits.handshakeTimeoutSeconds * 1000,
    idleTimeoutMs: limits.idleTimeoutSeconds * 1000,
    maxConcurrentStreams: limits.maxConcurrentStreams,
  };
}
