import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Broker, Logger } from '@trousseau/core';
import type { PrometheusMetrics } from './prometheus-metrics.js';

/** Splits "host:port" / "[v6]:port" into its parts. */
export function parseListenAddress(listen: string): { host: string; port: number } {
  const index = listen.lastIndexOf(':');
  const host = listen.slice(0, index).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number.parseInt(listen.slice(index + 1), 10) };
}

/** Whether the KMS socket is served: set by the server once it listens and cleared when it stops. */
export class ServingState {
  serving = false;
}

/**
 * The HTTP side listener for operators and probes:
 * - `/livez`: the process is up and serving the socket (200), else 503;
 * - `/readyz`, `/healthz`: 200 when the provider used for new encryptions is healthy, else 503, with a JSON
 *   body naming every provider, its state, reason and key id (answered from the cached health checks);
 * - `/metrics`: Prometheus text format.
 */
export class HealthServer {
  readonly #server: Server;
  readonly #broker: Broker;
  readonly #metrics: PrometheusMetrics;
  readonly #isServing: () => boolean;

  constructor(options: {
    broker: Broker;
    metrics: PrometheusMetrics;
    isServing: () => boolean;
    logger: Logger;
  }) {
    this.#broker = options.broker;
    this.#metrics = options.metrics;
    this.#isServing = options.isServing;
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        options.logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'health listener error',
        );
        if (!response.headersSent) response.writeHead(500).end();
      });
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/livez': {
        const live = this.#isServing();
        response
          .writeHead(live ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' })
          .end(live ? 'ok\n' : 'not serving\n');
        return;
      }
      case '/readyz':
      case '/healthz': {
        const status = this.#broker.status();
        const ready = this.#isServing() && status.healthy;
        const body = {
          status: ready ? 'ok' : 'unhealthy',
          encryptWith: this.#broker.encryptWith,
          keyId: status.keyId ?? null,
          reason: status.reason ?? null,
          providers: this.#broker.health().map((health) => ({
            name: health.name,
            state: health.state,
            reason: health.reason ?? null,
            keyId: health.keyId ?? null,
            keyUnusable: health.keyUnusable,
            checkedAt: health.checkedAt === 0 ? null : new Date(health.checkedAt).toISOString(),
          })),
        };
        response
          .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(body)}\n`);
        return;
      }
      case '/metrics': {
        const text = await this.#metrics.registry.metrics();
        response.writeHead(200, { 'content-type': this.#metrics.registry.contentType }).end(text);
        return;
      }
      default:
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    }
  }

  listen(listen: string): Promise<AddressInfo> {
    const { host, port } = parseListenAddress(listen);
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
