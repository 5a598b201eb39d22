import type { Logger } from './logger.js';

/** The value of every label an instrument declared, and no other label. */
export type LabelValues<L extends string> = { readonly [K in L]: string };

/** What declares an instrument: fixed for its whole life. */
export interface InstrumentOptions<L extends string> {
  /** snake_case, without the `trousseau_` prefix the exporter adds: `vault_logins_total`. */
  readonly name: string;
  readonly help: string;
  /** Every report gives a value for each of these, and for no other label. */
  readonly labelNames: readonly L[];
}

export interface HistogramOptions<L extends string> extends InstrumentOptions<L> {
  /** Upper bounds of the buckets, increasing (seconds for durations); the backend's default if omitted. */
  readonly buckets?: readonly number[];
}

export interface Counter<L extends string> {
  /** Adds `value` (default 1, never negative). */
  add(labels: LabelValues<L>, value?: number): void;
}

export interface Histogram<L extends string> {
  /** Records one observation: seconds for durations, counts for sizes. */
  observe(labels: LabelValues<L>, value: number): void;
}

export interface Gauge<L extends string> {
  set(labels: LabelValues<L>, value: number): void;
  /** Drops the series of these label values (an `_info` gauge's old key id, say). */
  remove(labels: LabelValues<L>): void;
}

/**
 * What a metrics backend implements (the server's Prometheus registry, a test's recorder): make the
 * instrument an options object declares and return its handle. It may throw; {@link guardMetrics} makes
 * it the {@link Metrics} core and providers report to, which never throws.
 */
export interface MetricsBackend {
  counter<L extends string>(options: InstrumentOptions<L>): Counter<L>;
  histogram<L extends string>(options: HistogramOptions<L>): Histogram<L>;
  gauge<L extends string>(options: InstrumentOptions<L>): Gauge<L>;
}

/**
 * The metrics hook core and providers report to (`ProviderContext.metrics`). Declare each instrument once,
 * up front (its kind, name, help and label names), and report through the typed handle the declaration
 * returns. Label an outcome with a gRPC status name (`Outcome`: `OK`, or `outcomeOf(error)`).
 *
 * Reporting never throws into the caller: a report that does not match its declaration (a missing or
 * extra label, a value that is not a finite number, a negative counter increment), a declaration that
 * clashes with an earlier one of the same name, or a backend failure drops the report and logs one
 * warning per metric. A metric can never fail a KMS call.
 */
export interface Metrics extends MetricsBackend {
  /**
   * @deprecated Core API 1.0's way to report, kept so providers written for it keep working: the first
   * report declares a counter with that report's label names; a later report with other labels is
   * dropped. Declare with {@link MetricsBackend.counter} instead.
   */
  increment(name: string, labels?: Readonly<Record<string, string>>, value?: number): void;
  /** @deprecated Core API 1.0; declare with {@link MetricsBackend.histogram}, as for `increment`. */
  observe(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
  /** @deprecated Core API 1.0; declare with {@link MetricsBackend.gauge}, as for `increment`. */
  set(name: string, value: number, labels?: Readonly<Record<string, string>>): void;
}

/** Latency buckets (seconds) of the per-call histograms, core's and the providers': 0.5 ms to 5 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** Marks a {@link Metrics} that already never throws; the same symbol in every copy of core. */
const GUARDED = Symbol.for('trousseau.metrics.guarded');

function markGuarded<T extends object>(metrics: T): T {
  Object.defineProperty(metrics, GUARDED, { value: true });
  return metrics;
}

const ignoreReport = (): void => undefined;
const noCounter: Counter<never> = { add: ignoreReport };
const noHistogram: Histogram<never> = { observe: ignoreReport };
const noGauge: Gauge<never> = { set: ignoreReport, remove: ignoreReport };

/** Drops everything: for tools and tests that do not look at metrics. */
export const noopMetrics: Metrics = markGuarded({
  counter: <L extends string>(): Counter<L> => noCounter,
  histogram: <L extends string>(): Histogram<L> => noHistogram,
  gauge: <L extends string>(): Gauge<L> => noGauge,
  increment: ignoreReport,
  observe: ignoreReport,
  set: ignoreReport,
});

type Kind = 'counter' | 'histogram' | 'gauge';

const NAME = /^[a-z_][a-z0-9_]*$/;
const LABEL_NAME = /^[a-z_][a-z0-9_]*$/;

/** Metric name of the guard's own count of what it dropped. */
const DROPPED_METRIC = 'metric_reports_dropped_total';

interface Declaration {
  readonly kind: Kind;
  /** The declared label names, sorted: two declarations agree when these and the buckets do. */
  readonly labels: readonly string[];
  readonly buckets: readonly number[] | undefined;
  /** The guarded handle every agreeing declaration gets. */
  readonly handle: Counter<string> | Histogram<string> | Gauge<string>;
}

function declarationProblem(kind: Kind, options: HistogramOptions<string>): string | undefined {
  if (typeof options !== 'object' || options === null) return 'the declaration is not an object';
  if (typeof options.name !== 'string' || !NAME.test(options.name))
    return `the name ${JSON.stringify(options.name)} is not snake_case`;
  if (typeof options.help !== 'string' || options.help === '') return 'the help text is empty';
  if (!Array.isArray(options.labelNames)) return 'labelNames is not an array';
  const seen = new Set<string>();
  for (const label of options.labelNames as unknown[]) {
    if (typeof label !== 'string' || !LABEL_NAME.test(label) || label.startsWith('__'))
      return `the label name ${JSON.stringify(label)} is not snake_case`;
    if (kind === 'histogram' && label === 'le') return 'a histogram cannot have a label named "le"';
    if (seen.has(label)) return `the label name "${label}" is declared twice`;
    seen.add(label);
  }
  const buckets = options.buckets as unknown;
  if (buckets !== undefined) {
    if (kind !== 'histogram') return 'only a histogram has buckets';
    if (
      !Array.isArray(buckets) ||
      buckets.length === 0 ||
      !buckets.every(
        (bound, index) =>
          typeof bound === 'number' &&
          Number.isFinite(bound) &&
          (index === 0 || bound > (buckets[index - 1] as number)),
      )
    )
      return 'buckets must be finite numbers in increasing order';
  }
  return undefined;
}

/**
 * Whether a report's labels are exactly the declared ones, all strings: the question every report asks,
 * answered without allocating (a report at each KMS call). {@link reportProblem} says what is wrong.
 */
function labelsMatch(labelNames: ReadonlySet<string>, labels: object): boolean {
  let count = 0;
  for (const name in labels) {
    if (!Object.hasOwn(labels, name)) continue;
    if (!labelNames.has(name)) return false;
    count++;
  }
  if (count !== labelNames.size) return false;
  for (const name of labelNames) {
    if (typeof (labels as Record<string, unknown>)[name] !== 'string') return false;
  }
  return true;
}

function reportProblem(
  kind: Kind,
  labelNames: ReadonlySet<string>,
  labels: unknown,
  value: unknown,
): string | undefined {
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
    return 'the labels are not an object';
  if (!labelsMatch(labelNames, labels)) {
    const problem = labelsProblem(labelNames, labels);
    if (problem !== undefined) return problem;
  }
  if (value === undefined) return undefined; // a gauge removal
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'the value is not a finite number';
  if (kind === 'counter' && value < 0) return 'a counter cannot go down';
  return undefined;
}

/** What is wrong with labels that do not match their declaration. */
function labelsProblem(labelNames: ReadonlySet<string>, labels: object): string | undefined {
  const given = Object.keys(labels);
  const extra = given.filter((name) => !labelNames.has(name));
  if (extra.length > 0) return `labels not declared: ${extra.join(', ')}`;
  const missing = [...labelNames].filter((name) => !Object.hasOwn(labels, name));
  if (missing.length > 0) return `declared labels missing: ${missing.join(', ')}`;
  for (const name of given) {
    if (typeof (labels as Record<string, unknown>)[name] !== 'string')
      return `the value of label "${name}" is not a string`;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The guard itself; see {@link guardMetrics}. */
class GuardedMetrics implements Metrics {
  readonly #backend: MetricsBackend;
  readonly #logger: Logger;
  readonly #declared = new Map<string, Declaration>();
  /** Metrics already warned about: one warning per metric, however many reports are dropped. */
  readonly #warned = new Set<string>();
  readonly #dropped: Counter<'metric'> | undefined;

  constructor(backend: MetricsBackend, logger: Logger) {
    markGuarded(this);
    this.#backend = backend;
    this.#logger = logger;
    try {
      this.#dropped = backend.counter({
        name: DROPPED_METRIC,
        help: 'Metric reports dropped because they did not match their declaration, or the backend failed',
        labelNames: ['metric'],
      });
    } catch (error) {
      this.#dropped = undefined;
      this.#warn(DROPPED_METRIC, `the backend refused the declaration: ${messageOf(error)}`);
    }
  }

  #warn(metric: string, problem: string): void {
    if (this.#warned.has(metric)) return;
    this.#warned.add(metric);
    try {
      this.#logger.warn(
        { metric, problem },
        'dropped a metric report; further drops of this metric are counted in trousseau_metric_reports_dropped_total, not logged',
      );
    } catch {
      // A logger that throws must not fail the call either.
    }
  }

  #drop(metric: string, problem: string): void {
    this.#warn(metric, problem);
    try {
      this.#dropped?.add({ metric });
    } catch {
      // Nothing more to do: the warning is out.
    }
  }

  /** Runs one backend call; a throw becomes a dropped report. */
  #safely(metric: string, report: () => void): void {
    try {
      report();
    } catch (error) {
      this.#backendFailed(metric, error);
    }
  }

  /** A backend call threw: the report is dropped. (The per-call reports inline the try, without a closure.) */
  #backendFailed(metric: string, error: unknown): void {
    this.#drop(metric, `the backend failed: ${messageOf(error)}`);
  }

  #declare<H extends Counter<string> | Histogram<string> | Gauge<string>>(
    kind: Kind,
    options: HistogramOptions<string>,
    make: (checked: ReadonlySet<string>, backendHandle: H) => H,
    dropping: H,
    create: () => H,
  ): H {
    let name = '(unnamed)';
    try {
      name = typeof options?.name === 'string' ? options.name : name;
      const problem = declarationProblem(kind, options);
      if (problem !== undefined) {
        this.#warn(name, `bad declaration of a ${kind}: ${problem}`);
        return dropping;
      }
      const labels = [...options.labelNames].sort();
      const buckets = options.buckets === undefined ? undefined : [...options.buckets];
      const earlier = this.#declared.get(name);
      if (earlier !== undefined) {
        const same =
          earlier.kind === kind &&
          earlier.labels.join(',') === labels.join(',') &&
          (earlier.buckets ?? []).join(',') === (buckets ?? []).join(',');
        if (same) return earlier.handle as H;
        this.#warn(
          name,
          `declared again as a ${kind} with labels [${labels.join(', ')}], but it is a ${earlier.kind} with labels [${earlier.labels.join(', ')}]${earlier.buckets === undefined ? '' : ` and buckets [${earlier.buckets.join(', ')}]`}`,
        );
        return dropping;
      }
      const handle = make(new Set(labels), create());
      this.#declared.set(name, { kind, labels, buckets, handle });
      return handle;
    } catch (error) {
      this.#warn(name, `the backend refused the declaration of a ${kind}: ${messageOf(error)}`);
      return dropping;
    }
  }

  counter<L extends string>(options: InstrumentOptions<L>): Counter<L> {
    const name = options?.name;
    const dropping: Counter<string> = { add: () => this.#drop(String(name), 'its declaration was refused') };
    return this.#declare<Counter<string>>(
      'counter',
      options,
      (labelNames, inner) => ({
        add: (labels, value = 1) => {
          const problem = reportProblem('counter', labelNames, labels, value);
          if (problem !== undefined) {
            this.#drop(options.name, problem);
            return;
          }
          try {
            inner.add(labels, value);
          } catch (error) {
            this.#backendFailed(options.name, error);
          }
        },
      }),
      dropping,
      () => this.#backend.counter(options),
    );
  }

  histogram<L extends string>(options: HistogramOptions<L>): Histogram<L> {
    const name = options?.name;
    const dropping: Histogram<string> = {
      observe: () => this.#drop(String(name), 'its declaration was refused'),
    };
    return this.#declare<Histogram<string>>(
      'histogram',
      options,
      (labelNames, inner) => ({
        observe: (labels, value) => {
          const problem = reportProblem('histogram', labelNames, labels, value);
          if (problem !== undefined) {
            this.#drop(options.name, problem);
            return;
          }
          try {
            inner.observe(labels, value);
          } catch (error) {
            this.#backendFailed(options.name, error);
          }
        },
      }),
      dropping,
      () => this.#backend.histogram(options),
    );
  }

  gauge<L extends string>(options: InstrumentOptions<L>): Gauge<L> {
    const name = options?.name;
    const refused = (): void => this.#drop(String(name), 'its declaration was refused');
    const dropping: Gauge<string> = { set: refused, remove: refused };
    return this.#declare<Gauge<string>>(
      'gauge',
      options,
      (labelNames, inner) => ({
        set: (labels, value) => {
          const problem = reportProblem('gauge', labelNames, labels, value);
          if (problem === undefined) this.#safely(options.name, () => inner.set(labels, value));
          else this.#drop(options.name, problem);
        },
        remove: (labels) => {
          const problem = reportProblem('gauge', labelNames, labels, undefined);
          if (problem === undefined) this.#safely(options.name, () => inner.remove(labels));
          else this.#drop(options.name, problem);
        },
      }),
      dropping,
      () => this.#backend.gauge(options),
    );
  }

  /** The instrument a core API 1.0 report goes to: declared by the first report of its name. */
  #legacy(kind: Kind, name: unknown, labels: unknown): Declaration | undefined {
    if (typeof name !== 'string') {
      this.#drop('(unnamed)', 'a report without a metric name');
      return undefined;
    }
    const existing = this.#declared.get(name);
    if (existing === undefined) {
      const labelNames =
        typeof labels === 'object' && labels !== null && !Array.isArray(labels) ? Object.keys(labels) : [];
      const options = { name, help: `${name} (declared by its first report)`, labelNames };
      if (kind === 'counter') this.counter(options);
      else if (kind === 'histogram') this.histogram(options);
      else this.gauge(options);
    }
    const declared = this.#declared.get(name);
    if (declared === undefined) {
      this.#drop(name, `a ${kind} report of a metric whose declaration was refused`);
      return undefined;
    }
    if (declared.kind !== kind) {
      this.#drop(name, `reported as a ${kind}, but it is declared as a ${declared.kind}`);
      return undefined;
    }
    return declared;
  }

  increment(name: string, labels: Readonly<Record<string, string>> = {}, value = 1): void {
    (this.#legacy('counter', name, labels)?.handle as Counter<string> | undefined)?.add(labels, value);
  }

  observe(name: string, value: number, labels: Readonly<Record<string, string>> = {}): void {
    (this.#legacy('histogram', name, labels)?.handle as Histogram<string> | undefined)?.observe(
      labels,
      value,
    );
  }

  set(name: string, value: number, labels: Readonly<Record<string, string>> = {}): void {
    (this.#legacy('gauge', name, labels)?.handle as Gauge<string> | undefined)?.set(labels, value);
  }
}

/**
 * Makes `backend` the {@link Metrics} core and providers report to: declarations and reports are checked
 * against each other, and nothing a backend or a bad report throws reaches the caller (it is dropped, with
 * one warning per metric on `logger`, and counted in `metric_reports_dropped_total`). A `Metrics` that is
 * already guarded is returned as it is.
 */
export function guardMetrics(backend: MetricsBackend, logger: Logger): Metrics {
  if ((backend as unknown as Record<symbol, unknown>)[GUARDED] === true) return backend as Metrics;
  return new GuardedMetrics(backend, logger);
}
