import {
  guardMetrics,
  silentLogger,
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type InstrumentOptions,
  type Logger,
  type Metrics,
  type MetricsBackend,
} from '@trousseau/core';

type Labels = Readonly<Record<string, string>>;

/** What a test can read of one declared instrument. */
export interface RecordedInstrument {
  readonly kind: 'counter' | 'histogram' | 'gauge';
  readonly help: string;
  readonly labelNames: readonly string[];
}

/**
 * Metrics kept in memory, for tests that read what core or a provider reported. Reports reach it through
 * core's guard (`guardMetrics`), as they reach the server's Prometheus registry, so a report that does not
 * match its declaration is dropped here too, never thrown. Hand it to a provider as `context.metrics`.
 */
export class RecordingMetrics implements Metrics {
  /** Instruments by name, as declared. */
  readonly declared = new Map<string, RecordedInstrument>();
  /** Counter totals, keyed by {@link RecordingMetrics.key}. */
  readonly counters = new Map<string, number>();
  /** Gauge values, keyed by {@link RecordingMetrics.key}; a removed series is deleted. */
  readonly gauges = new Map<string, number>();
  /** Every histogram observation, in order. */
  readonly observations: { readonly name: string; readonly value: number; readonly labels: Labels }[] = [];
  readonly #guarded: Metrics;

  /** `logger` receives the guard's warnings about dropped reports. */
  constructor(logger: Logger = silentLogger) {
    this.#guarded = guardMetrics(this.#backend(), logger);
  }

  /** `name{a=1,b=2}` with the labels sorted: the key of one series. */
  static key(name: string, labels: Labels = {}): string {
    const parts = Object.entries(labels)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([label, value]) => `${label}=${value}`);
    return `${name}{${parts.join(',')}}`;
  }

  /** The total of one counter series (0 when never reported). */
  count(name: string, labels: Labels): number {
    return this.counters.get(RecordingMetrics.key(name, labels)) ?? 0;
  }

  #backend(): MetricsBackend {
    const declare = (kind: RecordedInstrument['kind'], options: InstrumentOptions<string>): void => {
      this.declared.set(options.name, { kind, help: options.help, labelNames: [...options.labelNames] });
    };
    return {
      counter: <L extends string>(options: InstrumentOptions<L>): Counter<L> => {
        declare('counter', options);
        return {
          add: (labels, value = 1) => {
            const key = RecordingMetrics.key(options.name, labels);
            this.counters.set(key, (this.counters.get(key) ?? 0) + value);
          },
        };
      },
      histogram: <L extends string>(options: HistogramOptions<L>): Histogram<L> => {
        declare('histogram', options);
        return {
          observe: (labels, value) =>
            this.observations.push({ name: options.name, value, labels: { ...labels } }),
        };
      },
      gauge: <L extends string>(options: InstrumentOptions<L>): Gauge<L> => {
        declare('gauge', options);
        return {
          set: (labels, value) => this.gauges.set(RecordingMetrics.key(options.name, labels), value),
          remove: (labels) => this.gauges.delete(RecordingMetrics.key(options.name, labels)),
        };
      },
    };
  }

  counter<L extends string>(options: InstrumentOptions<L>): Counter<L> {
    return this.#guarded.counter(options);
  }

  histogram<L extends string>(options: HistogramOptions<L>): Histogram<L> {
    return this.#guarded.histogram(options);
  }

  gauge<L extends string>(options: InstrumentOptions<L>): Gauge<L> {
    return this.#guarded.gauge(options);
  }

  /** @deprecated Core API 1.0, for providers written for it; see `Metrics.increment`. */
  increment(name: string, labels?: Labels, value?: number): void {
    this.#guarded.increment(name, labels, value);
  }

  /** @deprecated Core API 1.0; see `Metrics.observe`. */
  observe(name: string, value: number, labels?: Labels): void {
    this.#guarded.observe(name, value, labels);
  }

  /** @deprecated Core API 1.0; see `Metrics.set`. */
  set(name: string, value: number, labels?: Labels): void {
    this.#guarded.set(name, value, labels);
  }
}
