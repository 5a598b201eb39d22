// The connections to Vault: a keep-alive pool per origin (the configured address, and the active node a
// standby redirects to), TLS settings on the https ones, or every request to the unix socket of a Vault
// Agent or Proxy. A renewed client certificate retires the https pools: their idle connections close now,
// their busy ones after their answer, and the next request opens a connection with the new certificate.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { ConnectionPool } from './http1/connection-pool.js';

/** TLS settings for Vault: the CA to trust, the client certificate, the name to check. */
export interface VaultTlsSettings {
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  /** Check Vault's certificate against this name (and send it as SNI) instead of the address's host. */
  readonly serverName: string | undefined;
  readonly rejectUnauthorized: boolean;
}

/** Limits of each origin's pool: node:http's Agent settings this transport had before. */
const POOL_LIMITS = {
  maxSockets: 64,
  maxIdle: 16,
  // Below the idle timeouts of Vault (5 minutes) and of common load balancers (60 s), so a pooled
  // connection is rarely closed by the far end while a request is being written on it.
  idleTimeoutMs: 30_000,
};
/** Origins kept at once: the address and its active node; a stray redirect target only costs a pool. */
const MAX_POOLS = 16;
/** TCP keep-alive probes after this much silence (node:http's Agent had the same). */
const KEEP_ALIVE_DELAY_MS = 1_000;

export class VaultConnections {
  /** A unix socket every request goes to (a Vault Agent or Proxy listener) instead of the URL's host. */
  readonly socketPath: string | undefined;
  readonly #maxBodyBytes: number;
  #tls: VaultTlsSettings;
  readonly #pools = new Map<string, ConnectionPool>();

  constructor(options: { socketPath: string | undefined; tls: VaultTlsSettings; maxBodyBytes: number }) {
    this.socketPath = options.socketPath;
    this.#tls = options.tls;
    this.#maxBodyBytes = options.maxBodyBytes;
  }

  /** The pool for the origin of `url` (or for the unix socket). */
  poolFor(url: URL): ConnectionPool {
    const origin = this.socketPath === undefined ? url.origin : 'unix';
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      if (this.#pools.size >= MAX_POOLS) this.close();
      pool = new ConnectionPool({
        ...POOL_LIMITS,
        maxBodyBytes: this.#maxBodyBytes,
        connect: this.#connector(url),
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /** Uses `tls` from the next connection on; the connections made with the old settings are retired. */
  replaceTls(tls: VaultTlsSettings): void {
    this.#tls = tls;
    for (const [origin, pool] of this.#pools) {
      if (!origin.startsWith('https:')) continue;
      pool.close();
      this.#pools.delete(origin);
    }
  }

  /** Closes every idle connection, and each busy one after its answer. */
  close(): void {
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
  }

  #connector(url: URL): () => Socket {
    const socketPath = this.socketPath;
    if (socketPath !== undefined) return () => tuned(netConnect({ path: socketPath }));
    // URL keeps the brackets of an IPv6 literal; connect wants the address alone.
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (url.protocol !== 'https:') {
      const port = url.port === '' ? 80 : Number(url.port);
      return () => tuned(netConnect({ host, port }));
    }
    const port = url.port === '' ? 443 : Number(url.port);
    // Read at each connection: a request that waited in a retired pool (see replaceTls) still connects
    // with the settings in force, never with the certificate they replaced.
    let settings: VaultTlsSettings | undefined;
    let options: ConnectionOptions = {};
    // The last TLS session made with these settings, offered on the next connection (a resumed handshake,
    // as node:https's Agent does); forgotten when the settings change.
    let session: Buffer | undefined;
    return () => {
      if (settings !== this.#tls) {
        settings = this.#tls;
        options = tlsConnectOptions(host, port, settings);
        session = undefined;
      }
      const made = settings;
      const socket = tlsConnect(session === undefined ? options : { ...options, session });
      socket.on('session', (ticket: Buffer) => {
        if (made === settings) session = ticket;
      });
      return tuned(socket);
    };
  }
}

function tlsConnectOptions(host: string, port: number, tls: VaultTlsSettings): ConnectionOptions {
  return {
    host,
    port,
    // SNI and the name checked: serverName when set, else the host unless it is an address.
    ...(tls.serverName !== undefined
      ? { servername: tls.serverName }
      : isIP(host) === 0
        ? { servername: host }
        : {}),
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined || tls.key === undefined ? {} : { cert: tls.cert, key: tls.key }),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

function tuned<T extends Socket>(socket: T): T {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
  return socket;
}
