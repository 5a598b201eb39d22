import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { resolve } from 'node:path';
import type { Broker } from '../broker.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Counter, Metrics } from '../metrics.js';
import type { RequestScope } from '../request-context.js';
import { kmsV1beta1Service } from './kms-v1beta1-service.js';
import { kmsV2Service, type V2StatusVersion } from './kms-v2-service.js';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './http2/connection-limits.js';
import { ConnectionTriage, type ConnectionPath } from './http2/connection-triage.js';
import { UnaryGrpcServer } from './unary-grpc-server.js';
import { LogRateLimit, truncateForLog } from '../log-limit.js';

/** The label set of each connection path, made once. */
const PATH_LABELS: Readonly<Record<ConnectionPath, { readonly path: ConnectionPath }>> = {
  direct: { path: 'direct' },
  rewritten: { path: 'rewritten' },
};

/** How much of a client-supplied authority a log line quotes. */
const LOGGED_AUTHORITY_CHARS = 64;
/** At most one warning this often about connections closed to stay under the cap. */
const EVICTION_WARNING_INTERVAL_MS = 10_000;
/** At most one warning of a kind this often about what clients do (failed calls, broken HTTP/2). */
const WARNING_INTERVAL_MS = 10_000;

export interface KmsGrpcServerOptions {
  readonly broker: Broker;
  readonly statusVersion: V2StatusVersion;
  /** Reported by v1beta1 Version as runtime_name / runtime_version. */
  readonly runtime: { readonly name: string; readonly version: string };
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** What one client may hold; defaults in `DEFAULT_CONNECTION_LIMITS`. */
  readonly limits?: Partial<ConnectionLimits>;
}

/** The largest request message accepted, as grpc-js's default `grpc.max_receive_message_length`. */
const MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The KMS front-end: KMS v2 and v1beta1 served by one gRPC server on one unix socket. Built as a value
 * apart from listen(), so tests and tools can compose it.
 *
 * The socket is accepted here: a `ConnectionTriage` reads each connection's first call and hands it to the
 * {@link UnaryGrpcServer} (unary gRPC on node:http2), as it is or, when it carries the socket path that
 * kube-apiserver before 1.32 sends as `:authority`, wrapped in a `RewritingConnection` that replaces it
 * (docs/architecture.md, "The socket and HTTP/2").
 */
export class KmsGrpcServer {
  readonly #server: UnaryGrpcServer;
  readonly #inFlight = new Set<RequestScope>();
  readonly #logger: Logger;
  readonly #connections = new Map<Socket, ConnectionTriage>();
  readonly #limits: ConnectionLimits;
  readonly #violationWarnings: LogRateLimit;
  readonly #connectionsServed: Counter<'path'>;
  #closing = false;
  #evictedSinceWarning = 0;
  #lastEvictionWarning = -Infinity;
  #listener: NetServer | undefined;
  #address: string | undefined;

  constructor(options: KmsGrpcServerOptions) {
    this.#logger = options.logger;
    this.#limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
    const deps = {
      logger: options.logger,
      metrics: options.metrics,
      clock: options.clock,
      inFlight: this.#inFlight,
      failureWarnings: new LogRateLimit({ intervalMs: WARNING_INTERVAL_MS, clock: options.clock }),
    };
    this.#violationWarnings = new LogRateLimit({ intervalMs: WARNING_INTERVAL_MS, clock: options.clock });
    this.#connectionsServed = options.metrics.counter({
      name: 'grpc_connections_total',
      help: 'KMS socket connections handed to gRPC, by path: direct, or rewritten (the socket path as :authority, kube-apiserver before 1.32)',
      labelNames: ['path'],
    });
    this.#server = new UnaryGrpcServer({
      methods: new Map(
        Object.entries({
          ...kmsV2Service(options.broker, options.statusVersion, deps),
          ...kmsV1beta1Service(options.broker, options.runtime, deps),
        }),
      ),
      maxConcurrentStreams: this.#limits.maxConcurrentStreams,
      idleTimeoutMs: this.#limits.idleTimeoutMs,
      maxReceiveMessageBytes: MAX_RECEIVE_MESSAGE_BYTES,
    });
  }

  /** Binds to a unix socket path (the file must not exist). */
  async listen(socketPath: string): Promise<void> {
    const path = resolve(socketPath);
    const listener = createServer({ allowHalfOpen: false }, (socket) => this.#accept(socket));
    await new Promise<void>((resolveListen, reject) => {
      listener.once('error', reject);
      listener.listen(path, () => {
        listener.off('error', reject);
        resolveListen();
      });
    });
    listener.on('error', (error) => this.#logger.error({ err: error }, 'the KMS socket listener failed'));
    this.#listener = listener;
    this.#address = `unix://${path}`;
  }

  #accept(socket: Socket): void {
    // A connection already destroyed (a protocol violation, an eviction) leaves the map on its 'close'
    // event, a tick later: it holds no slot, and evicting it would let one more live connection in.
    for (const open of this.#connections.keys()) if (open.destroyed) this.#connections.delete(open);
    if (this.#connections.size >= this.#limits.maxConnections) this.#evictOne();
    const triage = new ConnectionTriage(
      socket,
      {
        onViolation: (violation) => {
          // A client can break HTTP/2 on every connection it opens: one warning per interval, counted.
          const admitted = this.#violationWarnings.admit(violation.http2Error);
          if (admitted === undefined) return;
          this.#logger.warn(
            {
              http2Error: violation.http2Error,
              reason: truncateForLog(violation.message, 256),
              suppressedSinceLast: admitted.suppressed,
            },
            'closed a KMS connection that broke HTTP/2',
          );
        },
        onAuthorityReplaced: (original) =>
          this.#logger.debug(
            { authority: original.slice(0, LOGGED_AUTHORITY_CHARS) },
            'client sent an authority that HTTP/2 refuses (a socket path, as kube-apiserver before 1.32 does); serving it as localhost',
          ),
        onHandshakeTimeout: () =>
          this.#logger.debug(
            { handshakeTimeoutMs: this.#limits.handshakeTimeoutMs },
            'closed a KMS connection that sent no HTTP/2 preface in time',
          ),
        onDecided: (path, stream) => {
          if (this.#closing) {
            socket.destroy();
            return;
          }
          this.#connectionsServed.add(PATH_LABELS[path]);
          this.#server.serve(stream);
        },
      },
      {
        handshakeTimeoutMs: this.#limits.handshakeTimeoutMs,
        idleTimeoutMs: this.#limits.idleTimeoutMs,
        maxConcurrentStreams: this.#limits.maxConcurrentStreams,
      },
    );
    this.#connections.set(socket, triage);
    socket.once('close', () => this.#connections.delete(socket));
  }

  /**
   * Makes room for a new connection at the cap: closes one that never completed the HTTP/2 handshake
   * (the oldest), otherwise the one whose client has been quiet the longest. A client that is only
   * holding a slot loses it; a caller with work reconnects (kube-apiserver's gRPC client does by itself).
   */
  #evictOne(): void {
    let victim: [Socket, ConnectionTriage] | undefined;
    for (const entry of this.#connections) {
      const [, connection] = entry;
      if (!connection.handshakeComplete) {
        victim = entry;
        break;
      }
      if (victim === undefined || connection.lastActivity < victim[1].lastActivity) victim = entry;
    }
    if (victim === undefined) return;
    this.#connections.delete(victim[0]);
    victim[0].destroy();
    this.#evictedSinceWarning++;
    const now = performance.now();
    if (now - this.#lastEvictionWarning >= EVICTION_WARNING_INTERVAL_MS) {
      this.#logger.warn(
        { maxConnections: this.#limits.maxConnections, closed: this.#evictedSinceWarning },
        'the KMS socket is at its connection cap: closed the least active connections to admit new ones',
      );
      this.#lastEvictionWarning = now;
      this.#evictedSinceWarning = 0;
    }
  }

  get address(): string | undefined {
    return this.#address;
  }

  /**
   * Stops accepting calls and lets in-flight ones finish; after `graceMs` the remaining calls are told to
   * stop (their providers see an aborted signal) and the server is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#closing = true;
    // The gRPC server drains the connections it has; one still being triaged holds no call yet.
    for (const [socket, triage] of this.#connections) if (!triage.decided) socket.destroy();
    const listener = this.#listener;
    const stopped =
      listener === undefined
        ? Promise.resolve()
        : new Promise<void>((resolveClose) => listener.close(() => resolveClose()));
    const drained = this.#server.drain().then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const clean = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!clean) {
      this.#logger.warn({ graceMs }, 'in-flight calls did not finish in time; cancelling them');
      for (const scope of this.#inFlight) scope.cancel('the server is shutting down');
      this.#server.destroy();
      for (const socket of this.#connections.keys()) socket.destroy();
    }
    await stopped;
  }
}
