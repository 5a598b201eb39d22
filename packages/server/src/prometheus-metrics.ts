import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type {
  Counter as CounterHandle,
  Gauge as GaugeHandle,
  Histogram as HistogramHandle,
  HistogramOptions,
  InstrumentOptions,
  MetricsBackend,
} from '@trousseau/core';

type Instrument = PromClient.Counter | PromClient.Histogram | PromClient.Gauge;

/**
 * prom-client, loaded when the first `PrometheusMetrics` is made rather than with this module: with no
 * `health.listen` nothing can read metrics, the composition root makes none, and a start saves loading
 * prom-client and @opentelemetry/api (issue 12). It is CommonJS, so `require` loads it synchronously
 * where the container resolves.
 */
function promClient(): typeof PromClient {
  return createRequire(import.meta.url)('prom-client') as typeof PromClient;
}

/**
 * The metrics backend of the server: each declared instrument is a prom-client metric in its own
 * registry, named with the `trousseau_` prefix, beside the default Node process metrics. It makes what
 * it is asked and throws on what prom-client refuses (two declarations of one name that disagree, a name
 * the process metrics use); core's guard (`guardMetrics`, which the composition root puts in front of it)
 * turns that into one warning, so nothing here can fail a KMS call.
 */
export class PrometheusMetrics implements MetricsBackend {
  readonly registry: PromClient.Registry;
  readonly #prom = promClient();
  readonly #instruments = new Map<string, { readonly signature: string; readonly metric: Instrument }>();

  constructor() {
    this.registry = new this.#prom.Registry();
    this.#prom.collectDefaultMetrics({ register: this.registry, prefix: 'trousseau_' });
  }

  /** The metric declared under `name`: the same one again for an identical declaration. */
  #instrument<M extends Instrument>(
    kind: string,
    options: HistogramOptions<string>,
    make: (name: string, labelNames: string[]) => M,
  ): M {
    const signature = `${kind}|${[...options.labelNames].sort().join(',')}|${options.buckets?.join(',') ?? ''}`;
    const existing = this.#instruments.get(options.name);
    if (existing !== undefined) {
      if (existing.signature !== signature) {
        throw new Error(`metric ${options.name} is already declared differently (${existing.signature})`);
      }
      return existing.metric as M;
    }
    const metric = make(`trousseau_${options.name}`, [...options.labelNames]);
    this.#instruments.set(options.name, { signature, metric });
    return metric;
  }

  counter<L extends string>(options: InstrumentOptions<L>): CounterHandle<L> {
    const counter = this.#instrument(
      'counter',
      options,
      (name, labelNames) =>
        new this.#prom.Counter({ name, help: options.help, labelNames, registers: [this.registry] }),
    );
    return { add: (labels, value = 1) => counter.inc(labels, value) };
  }

  histogram<L extends string>(options: HistogramOptions<L>): HistogramHandle<L> {
    const histogram = this.#instrument(
      'histogram',
      options,
      (name, labelNames) =>
        new this.#prom.Histogram({
          name,
          help: options.help,
          labelNames,
          ...(options.buckets === undefined ? {} : { buckets: [...options.buckets] }),
          registers: [this.registry],
        }),
    );
    return { observe: (labels, value) => histogram.observe(labels, value) };
  }

  gauge<L extends string>(options: InstrumentOptions<L>): GaugeHandle<L> {
    const gauge = this.#instrument(
      'gauge',
      options,
      (name, labelNames) =>
        new this.#prom.Gauge({ name, help: options.help, labelNames, registers: [this.registry] }),
    );
    return {
      set: (labels, value) => gauge.set(labels, value),
      remove: (labels) => gauge.remove(labels),
    };
  }
}
