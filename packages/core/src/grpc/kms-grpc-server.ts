import { resolve } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Broker } from '../broker.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { RequestScope } from '../request-context.js';
import { kmsV1beta1Service } from './kms-v1beta1-service.js';
import { kmsV2Service, type V2StatusVersion } from './kms-v2-service.js';
import { kmsServices } from './protos.js';

export interface KmsGrpcServerOptions {
  readonly broker: Broker;
  readonly statusVersion: V2StatusVersion;
  /** Reported by v1beta1 Version as runtime_name / runtime_version. */
  readonly runtime: { readonly name: string; readonly version: string };
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
}

/**
 * The KMS front-end: KMS v2 and v1beta1 served by one grpc-js server on one unix socket. Built as a value
 * apart from listen(), so tests and tools can compose it.
 */
export class KmsGrpcServer {
  readonly #server: Server;
  readonly #inFlight = new Set<RequestScope>();
  readonly #logger: Logger;
  #address: string | undefined;

  constructor(options: KmsGrpcServerOptions) {
    this.#logger = options.logger;
    this.#server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
    const deps = {
      logger: options.logger,
      metrics: options.metrics,
      clock: options.clock,
      inFlight: this.#inFlight,
    };
    const services = kmsServices();
    this.#server.addService(services.v2.service, kmsV2Service(options.broker, options.statusVersion, deps));
    this.#server.addService(
      services.v1beta1.service,
      kmsV1beta1Service(options.broker, options.runtime, deps),
    );
  }

  /** Binds to a unix socket path (the file must not exist). */
  listen(socketPath: string): Promise<void> {
    const address = `unix://${resolve(socketPath)}`;
    return new Promise((resolve, reject) => {
      this.#server.bindAsync(address, ServerCredentials.createInsecure(), (error) => {
        if (error !== null) {
          reject(error);
          return;
        }
        this.#address = address;
        resolve();
      });
    });
  }

  get address(): string | undefined {
    return this.#address;
  }

  /**
   * Stops accepting calls and lets in-flight ones finish; after `graceMs` the remaining calls are told to
   * stop (their providers see an aborted signal) and the server is closed.
   */
  async shutdown(graceMs: number): Promise<void> {
    const drained = new Promise<boolean>((resolve) => this.#server.tryShutdown(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const clean = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!clean) {
      this.#logger.warn({ graceMs }, 'in-flight calls did not finish in time; cancelling them');
      for (const scope of this.#inFlight) scope.cancel('the server is shutting down');
      this.#server.forceShutdown();
    }
  }
}
