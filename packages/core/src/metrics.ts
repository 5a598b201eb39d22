/**
 * The metrics hook core and providers report to. The server wires it to Prometheus; the default drops
 * everything. Names are snake_case without the `trousseau_` prefix, which the exporter adds.
 */
export interface Metrics {
  /** Adds `value` (default 1) to a counter. */
  increment(name: string, labels?: Readonly<Record<string, string>>, value?: number): void;
  /** Records one observation (seconds for durations, counts for sizes) in a histogram. */
  observe(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
  /** Sets a gauge. */
  set(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
}

export const noopMetrics: Metrics = {
  increment: () => undefined,
  observe: () => undefined,
  set: () => undefined,
};
