import {
  KmsGrpcServer,
  systemClock,
  type Broker,
  type BuiltinProviders,
  type Clock,
  type LoadedConfig,
  type Logger,
} from '@trousseau/core';
import { createBroker, createTrousseauContainer } from '@trousseau/core/wiring';
import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { BUILTIN_PROVIDERS } from './builtin-providers.js';
import { HealthServer } from './health-server.js';
import { PrometheusMetrics } from './prometheus-metrics.js';
import {
  claimSocketPath,
  prepareSocketPath,
  removeSocket,
  secureSocket,
  socketIdentity,
  temporarySocketPath,
} from './socket-file.js';
import { TROUSSEAU_VERSION } from './version.js';

export interface TrousseauServerOptions {
  readonly loaded: LoadedConfig;
  readonly logger: Logger;
  /** Where metrics go; default a fresh Prometheus registry (served on the health listener). */
  readonly metrics?: PrometheusMetrics;
  readonly clock?: Clock;
  /** Extra or replacement provider types (tests add scripted ones). */
  readonly builtins?: BuiltinProviders;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How long a stop waits for in-flight calls before cancelling them. */
  readonly drainTimeoutMs?: number;
}

/**
 * The whole plugin as a value: providers, broker and the gRPC front-end, wired by the DI container.
 * `listen()` binds the socket; `close()` drains and releases everything. Tests and tools compose it
 * without a process.
 */
export class TrousseauServer {
  readonly broker: Broker;
  readonly socketPath: string;
  readonly metrics: PrometheusMetrics;
  readonly #grpc: KmsGrpcServer;
  readonly #health: HealthServer;
  readonly #loaded: LoadedConfig;
  readonly #logger: Logger;
  readonly #drainTimeoutMs: number;
  /** The bound socket file's identity (device and inode), set once listening. */
  #socketIdentity: string | undefined;
  #healthAddress: AddressInfo | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    options: TrousseauServerOptions,
    metrics: PrometheusMetrics,
    broker: Broker,
    grpc: KmsGrpcServer,
  ) {
    this.broker = broker;
    this.metrics = metrics;
    this.#grpc = grpc;
    this.#health = new HealthServer({
      broker,
      metrics,
      isServing: () => this.#socketIdentity !== undefined && this.#closed === undefined,
      logger: options.logger,
    });
    this.#loaded = options.loaded;
    this.#logger = options.logger;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.socketPath = options.loaded.config.socket.path;
  }

  /** Loads and creates every configured provider and builds the front-end; binds nothing yet. */
  static async create(options: TrousseauServerOptions): Promise<TrousseauServer> {
    const metrics = options.metrics ?? new PrometheusMetrics();
    const container = createTrousseauContainer({
      config: options.loaded,
      logger: options.logger,
      builtins: { ...BUILTIN_PROVIDERS, ...options.builtins },
      metrics,
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    const broker = await createBroker(container);
    const { config } = options.loaded;
    const grpc = new KmsGrpcServer({
      broker,
      statusVersion: config.kms.statusVersion,
      runtime: { name: 'trousseau', version: TROUSSEAU_VERSION },
      logger: options.logger,
      metrics,
      clock: options.clock ?? systemClock,
    });
    return new TrousseauServer(options, metrics, broker, grpc);
  }

  /** The side listener's bound address (port 0 in the config picks a free port), once listening. */
  get healthAddress(): AddressInfo | undefined {
    return this.#healthAddress;
  }

  /** Checks the providers once, then binds the socket with the configured mode and owner. */
  async listen(): Promise<void> {
    const { socket } = this.#loaded.config;
    await this.broker.start();
    await prepareSocketPath(socket.path, this.#logger);
    // Bind under a temporary name, set mode and owner, then link it into place: the socket is never
    // reachable with looser permissions; the link fails if another instance took the path meanwhile
    // (a rename would silently replace its socket); and the name libuv unlinks when the server closes
    // is the temporary one, so a stop cannot remove a socket another process has since bound there.
    const temporary = temporarySocketPath(socket.path);
    await this.#grpc.listen(temporary);
    try {
      await secureSocket(temporary, socket);
      await claimSocketPath(temporary, socket.path);
    } finally {
      // After a successful claim the socket lives on under its real name; this removes only the
      // temporary one (which libuv would otherwise unlink at close).
      await rm(temporary, { force: true });
    }
    this.#socketIdentity = await socketIdentity(socket.path);
    const { listen } = this.#loaded.config.health;
    if (listen !== undefined) this.#healthAddress = await this.#health.listen(listen);
    const status = this.broker.status();
    this.#logger.info(
      {
        socket: socket.path,
        mode: socket.mode,
        encryptWith: this.broker.encryptWith,
        keyId: status.keyId,
        healthy: status.healthy,
        health:
          this.#healthAddress === undefined
            ? undefined
            : `${this.#healthAddress.address}:${this.#healthAddress.port}`,
        config: this.#loaded.file,
      },
      'trousseau is serving KMS v2 and v1beta1',
    );
  }

  /** Stops accepting calls, lets in-flight ones finish, closes the providers and removes the socket. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.#grpc.shutdown(this.#drainTimeoutMs);
      if (this.#healthAddress !== undefined) await this.#health.close();
      await this.broker.close();
      if (this.#socketIdentity !== undefined) await removeSocket(this.socketPath, this.#socketIdentity);
      this.#logger.info({ socket: this.socketPath }, 'trousseau stopped');
    })();
    return this.#closed;
  }
}
