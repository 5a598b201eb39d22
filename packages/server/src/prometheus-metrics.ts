import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Metrics } from '@trousseau/core';

type Labels = Readonly<Record<string, string>>;

/** Help texts and label names of the metrics core and the built-in providers report. */
const KNOWN: Readonly<Record<string, { help: string; labels: readonly string[]; buckets?: number[] }>> = {
  grpc_requests_total: {
    help: 'KMS gRPC calls by API, rpc and outcome (gRPC status)',
    labels: ['api', 'rpc', 'outcome'],
  },
  grpc_request_duration_seconds: {
    help: 'KMS gRPC call latency by API, rpc and outcome (gRPC status)',
    labels: ['api', 'rpc', 'outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
  provider_request_duration_seconds: {
    help: 'Provider encrypt/decrypt latency by provider instance, operation and outcome (gRPC status)',
    labels: ['provider', 'operation', 'outcome'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  },
  provider_healthy: {
    help: '1 when the provider instance passed its last health check, else 0',
    labels: ['provider'],
  },
  key_id_info: {
    help: 'The current key id of each provider instance (value is always 1)',
    labels: ['provider', 'key_id'],
  },
  provider_batch_size: {
    help: 'Items per batched backend request',
    labels: ['provider'],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  },
};

/**
 * core's metrics hook backed by prom-client. Metrics are created on first use: the known ones with their
 * help and buckets, any other (from a third-party provider) with the label names of its first report.
 * Everything is prefixed `trousseau_`; default Node process metrics are included.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  readonly #counters = new Map<string, Counter>();
  readonly #histograms = new Map<string, Histogram>();
  readonly #gauges = new Map<string, Gauge>();
  /** For `*_info` gauges: the labels last set per provider, removed when a new value replaces them. */
  readonly #infoLabels = new Map<string, Labels>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'trousseau_' });
  }

  #spec(
    name: string,
    labels: Labels | undefined,
  ): { help: string; labelNames: string[]; buckets?: number[] } {
    const known = KNOWN[name];
    if (known !== undefined) {
      return {
        help: known.help,
        labelNames: [...known.labels],
        ...(known.buckets ? { buckets: known.buckets } : {}),
      };
    }
    return { help: `${name} (reported by a provider)`, labelNames: Object.keys(labels ?? {}) };
  }

  increment(name: string, labels?: Labels, value = 1): void {
    let counter = this.#counters.get(name);
    if (counter === undefined) {
      const spec = this.#spec(name, labels);
      counter = new Counter({
        name: `trousseau_${name}`,
        help: spec.help,
        labelNames: spec.labelNames,
        registers: [this.registry],
      });
      this.#counters.set(name, counter);
    }
    counter.inc(labels ?? {}, value);
  }

  observe(name: string, value: number, labels?: Labels): void {
    let histogram = this.#histograms.get(name);
    if (histogram === undefined) {
      const spec = this.#spec(name, labels);
      histogram = new Histogram({
        name: `trousseau_${name}`,
        help: spec.help,
        labelNames: spec.labelNames,
        ...(spec.buckets ? { buckets: spec.buckets } : {}),
        registers: [this.registry],
      });
      this.#histograms.set(name, histogram);
    }
    histogram.observe(labels ?? {}, value);
  }

  set(name: string, value: number, labels?: Labels): void {
    let gauge = this.#gauges.get(name);
    if (gauge === undefined) {
      const spec = this.#spec(name, labels);
      gauge = new Gauge({
        name: `trousseau_${name}`,
        help: spec.help,
        labelNames: spec.labelNames,
        registers: [this.registry],
      });
      this.#gauges.set(name, gauge);
    }
    if (name.endsWith('_info') && labels?.['provider'] !== undefined) {
      const key = `${name}\0${labels['provider']}`;
      const previous = this.#infoLabels.get(key);
      if (previous !== undefined) gauge.remove(previous);
      this.#infoLabels.set(key, labels);
    }
    gauge.set(labels ?? {}, value);
  }
}
