// The server as a value resolves through tsyringe: reflect-metadata must be loaded before the wiring.
import './reflect-polyfill.js';
import type { Broker, LoadedConfig, Logger } from '@trousseau/core';
import type { KmsGrpcServer } from '@trousseau/core/grpc';
import {
  createProviders,
  providerToken,
  resolveToken,
  TOKENS,
  type DependencyContainer,
} from '@trousseau/core/wiring';
import type { AddressInfo } from 'node:net';
import type { HealthServer, ServingState } from './health-server.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';
import { createServerContainer, SERVER_TOKENS, type ServerContainerOptions } from './server-container.js';
import {
  claimSocketPath,
  makeBindPath,
  prepareSocketPath,
  removeBindDirectory,
  removeSocket,
  secureSocket,
  socketIdentity,
} from './socket-file.js';

export type TrousseauServerOptions = ServerContainerOptions;

/**
 * The whole plugin as a value: providers, broker, the gRPC front-end and the HTTP side listener, each
 * resolved from the composition root's container. `listen()` binds the socket; `close()` drains and
 * releases everything. Tests and tools compose it without a process.
 */
export class TrousseauServer {
  readonly broker: Broker;
  readonly socketPath: string;
  readonly #container: DependencyContainer;
  readonly #grpc: KmsGrpcServer;
  /** The HTTP side listener, made when `listen()` binds it: only with `health.listen` set. */
  #health: HealthServer | undefined;
  readonly #serving: ServingState;
  readonly #loaded: LoadedConfig;
  readonly #logger: Logger;
  readonly #drainTimeoutMs: number;
  /** The bound socket file's identity (device and inode), set once listening. */
  #socketIdentity: string | undefined;
  #healthAddress: AddressInfo | undefined;
  #closed: Promise<void> | undefined;

  private constructor(container: DependencyContainer) {
    this.#container = container;
    this.broker = resolveToken(container, TOKENS.broker);
    this.#grpc = resolveToken(container, TOKENS.kmsServer);
    this.#serving = resolveToken(container, SERVER_TOKENS.serving);
    this.#loaded = resolveToken(container, TOKENS.config);
    this.#logger = resolveToken(container, TOKENS.logger);
    this.#drainTimeoutMs = resolveToken(container, SERVER_TOKENS.drainTimeoutMs);
    this.socketPath = this.#loaded.config.socket.path;
  }

  /** Loads and creates every configured provider and builds the front-end; binds nothing yet. */
  static create(options: TrousseauServerOptions): Promise<TrousseauServer> {
    return TrousseauServer.fromContainer(createServerContainer(options));
  }

  /**
   * Creates the providers the container's config lists, then resolves the server from the container
   * (see `createServerContainer`; a test registers its own values under tokens before this).
   */
  static async fromContainer(container: DependencyContainer): Promise<TrousseauServer> {
    await createProviders(container);
    try {
      return new TrousseauServer(container);
    } catch (error) {
      // Nothing owns the providers yet: close the ones created before this part failed.
      const { providers } = resolveToken(container, TOKENS.config).config;
      await Promise.allSettled(
        providers
          .map((entry) => providerToken(entry.name))
          .filter((token) => container.isRegistered(token.symbol, true))
          .map((token) => resolveToken(container, token).close()),
      );
      throw error;
    }
  }

  /**
   * The Prometheus registry `/metrics` serves. Made (and prom-client loaded) on first use: what the
   * server records goes into it only when it is the metrics backend, with `health.listen` set.
   */
  get metrics(): PrometheusMetrics {
    return resolveToken(this.#container, SERVER_TOKENS.prometheus);
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
    // Bind in a private directory of our own beside the socket, set mode and owner, then link it into
    // place: the socket is never reachable with looser permissions; the link fails if another instance
    // took the path meanwhile (a rename would silently replace its socket); no name a user could have
    // chosen is ever bound or removed (the directory is created exclusively); and the name libuv unlinks
    // when the server closes is the one in that directory, gone by then, so a stop cannot remove a socket
    // another process has since bound at the path.
    const bindPath = await makeBindPath(socket.path);
    try {
      await this.#grpc.listen(bindPath);
      await secureSocket(bindPath, socket);
      await claimSocketPath(bindPath, socket.path);
    } finally {
      // After a successful claim the socket lives on under its real name.
      await removeBindDirectory(bindPath);
    }
    this.#socketIdentity = await socketIdentity(socket.path);
    this.#serving.serving = true;
    const { listen } = this.#loaded.config.health;
    if (listen !== undefined) {
      this.#health = resolveToken(this.#container, SERVER_TOKENS.healthServer);
      this.#healthAddress = await this.#health.listen(listen);
    }
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
      this.#serving.serving = false;
      await this.#grpc.shutdown(this.#drainTimeoutMs);
      if (this.#healthAddress !== undefined) await this.#health?.close();
      await this.broker.close();
      if (this.#socketIdentity !== undefined) await removeSocket(this.socketPath, this.#socketIdentity);
      this.#logger.info({ socket: this.socketPath }, 'trousseau stopped');
    })();
    return this.#closed;
  }
}
