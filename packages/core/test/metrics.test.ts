import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  guardMetrics,
  noopMetrics,
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type InstrumentOptions,
  type Logger,
  type MetricsBackend,
} from '../src/index.js';

/** A logger that keeps the warnings. */
function warningsLogger(): { logger: Logger; warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const ignore = (): void => undefined;
  const logger: Logger = {
    trace: ignore,
    debug: ignore,
    info: ignore,
    warn: (fields: unknown) => {
      warnings.push(typeof fields === 'string' ? { msg: fields } : (fields as Record<string, unknown>));
    },
    error: ignore,
    child: () => logger,
  };
  return { logger, warnings };
}

type Report = { readonly metric: string; readonly labels: unknown; readonly value?: unknown };

/**
 * A backend that records what reaches it and, like prom-client, throws on what it cannot take: a report
 * with labels it was not declared with, a counter going down, a second declaration of a name.
 */
class StrictBackend implements MetricsBackend {
  readonly reports: Report[] = [];
  readonly #declared = new Map<string, readonly string[]>();

  #declare(options: InstrumentOptions<string>): (labels: unknown, value?: unknown) => void {
    if (this.#declared.has(options.name)) throw new Error(`${options.name} is already registered`);
    this.#declared.set(options.name, options.labelNames);
    return (labels, value) => {
      const names = Object.keys(labels as object);
      const extra = names.find((name) => !options.labelNames.includes(name));
      if (extra !== undefined) throw new Error(`Added label "${extra}" is not included in initial labelset`);
      this.reports.push({ metric: options.name, labels, value });
    };
  }

  counter<L extends string>(options: InstrumentOptions<L>): Counter<L> {
    const report = this.#declare(options);
    return {
      add: (labels, value = 1) => {
        if (value < 0) throw new Error('It is not possible to decrease a counter');
        report(labels, value);
      },
    };
  }

  histogram<L extends string>(options: HistogramOptions<L>): Histogram<L> {
    const report = this.#declare(options);
    return { observe: (labels, value) => report(labels, value) };
  }

  gauge<L extends string>(options: InstrumentOptions<L>): Gauge<L> {
    const report = this.#declare(options);
    return { set: (labels, value) => report(labels, value), remove: (labels) => report(labels) };
  }

  /** What reached the backend for `metric`. */
  of(metric: string): Report[] {
    return this.reports.filter((report) => report.metric === metric);
  }
}

/** A backend that throws at every declaration and every report. */
const brokenBackend: MetricsBackend = {
  counter: () => {
    throw new Error('backend down');
  },
  histogram: () => ({
    observe: () => {
      throw new Error('backend down');
    },
  }),
  gauge: () => ({
    set: () => {
      throw new Error('backend down');
    },
    remove: () => {
      throw new Error('backend down');
    },
  }),
};

describe('metrics guard', () => {
  it('passes reports that match their declaration through to the backend', () => {
    const backend = new StrictBackend();
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(backend, logger);
    const calls = metrics.counter({
      name: 'calls_total',
      help: 'calls',
      labelNames: ['provider', 'outcome'],
    });
    calls.add({ provider: 'p', outcome: 'OK' });
    calls.add({ outcome: 'UNAVAILABLE', provider: 'p' }, 2);
    const latency = metrics.histogram({
      name: 'latency_seconds',
      help: 'latency',
      labelNames: ['provider'],
      buckets: [0.1, 1],
    });
    latency.observe({ provider: 'p' }, 0.25);
    const info = metrics.gauge({ name: 'key_info', help: 'key', labelNames: ['key_id'] });
    info.set({ key_id: 'a' }, 1);
    info.remove({ key_id: 'a' });
    assert.deepEqual(backend.of('calls_total'), [
      { metric: 'calls_total', labels: { provider: 'p', outcome: 'OK' }, value: 1 },
      { metric: 'calls_total', labels: { outcome: 'UNAVAILABLE', provider: 'p' }, value: 2 },
    ]);
    assert.deepEqual(backend.of('latency_seconds'), [
      { metric: 'latency_seconds', labels: { provider: 'p' }, value: 0.25 },
    ]);
    assert.equal(backend.of('key_info').length, 2);
    assert.deepEqual(warnings, []);
  });

  it('drops a report that does not match its declaration, with one warning per metric, never throwing', () => {
    const backend = new StrictBackend();
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(backend, logger);
    const calls = metrics.counter({ name: 'calls_total', help: 'calls', labelNames: ['provider'] });
    const untyped = calls as unknown as { add(labels: unknown, value?: unknown): void };
    untyped.add({ provider: 'p', outcome: 'OK' }); // a label not declared
    untyped.add({}); // a declared label missing
    untyped.add({ provider: 7 }); // not a string
    untyped.add({ provider: 'p' }, Number.NaN);
    untyped.add({ provider: 'p' }, -1); // a counter cannot go down
    untyped.add(null);
    calls.add({ provider: 'p' });
    assert.deepEqual(backend.of('calls_total'), [
      { metric: 'calls_total', labels: { provider: 'p' }, value: 1 },
    ]);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]?.['metric'], 'calls_total');
    assert.match(String(warnings[0]?.['problem']), /labels not declared: outcome/);
    assert.deepEqual(
      backend.of('metric_reports_dropped_total').map((report) => [report.labels, report.value]),
      Array.from({ length: 6 }, () => [{ metric: 'calls_total' }, 1]),
      'every drop is counted',
    );
  });

  it('gives a second declaration of a name the same instrument when it agrees, and a dropping one when not', () => {
    const backend = new StrictBackend();
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(backend, logger);
    const first = metrics.counter({ name: 'logins_total', help: 'a', labelNames: ['provider', 'method'] });
    const again = metrics.counter({ name: 'logins_total', help: 'b', labelNames: ['method', 'provider'] });
    again.add({ provider: 'p', method: 'token' });
    const clash = metrics.histogram({ name: 'logins_total', help: 'c', labelNames: ['provider'] });
    clash.observe({ provider: 'p' }, 1);
    first.add({ provider: 'p', method: 'approle' });
    assert.deepEqual(
      backend.of('logins_total').map((report) => report.labels),
      [
        { provider: 'p', method: 'token' },
        { provider: 'p', method: 'approle' },
      ],
    );
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]?.['problem']), /declared again as a histogram/);
  });

  it('refuses a bad declaration without throwing, and drops what is reported through it', () => {
    const backend = new StrictBackend();
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(backend, logger);
    metrics.counter({ name: 'Bad-Name', help: 'x', labelNames: [] }).add({});
    metrics.histogram({ name: 'sizes', help: 'x', labelNames: ['le'] }).observe({ le: '1' }, 1);
    metrics.histogram({ name: 'waits', help: 'x', labelNames: [], buckets: [1, 0.5] }).observe({}, 1);
    metrics.gauge({ name: 'twice', help: 'x', labelNames: ['a', 'a'] }).set({ a: '1' }, 1);
    assert.deepEqual(
      backend.reports.filter((report) => report.metric !== 'metric_reports_dropped_total'),
      [],
    );
    assert.deepEqual(
      warnings.map((warning) => warning['metric']),
      ['Bad-Name', 'sizes', 'waits', 'twice'],
    );
  });

  it('keeps a backend that throws at declarations and reports away from the caller', () => {
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(brokenBackend, logger);
    const calls = metrics.counter({ name: 'calls_total', help: 'calls', labelNames: ['provider'] });
    const latency = metrics.histogram({ name: 'latency_seconds', help: 'latency', labelNames: [] });
    const usable = metrics.gauge({ name: 'usable', help: 'usable', labelNames: [] });
    for (let i = 0; i < 3; i += 1) {
      calls.add({ provider: 'p' });
      latency.observe({}, 1);
      usable.set({}, 1);
      usable.remove({});
    }
    assert.deepEqual(
      warnings.map((warning) => warning['metric']),
      ['metric_reports_dropped_total', 'calls_total', 'latency_seconds', 'usable'],
      'one warning per metric',
    );
  });

  it('never throws when its logger does', () => {
    const throwing: Logger = {
      ...warningsLogger().logger,
      warn: () => {
        throw new Error('log sink down');
      },
    };
    const metrics = guardMetrics(brokenBackend, throwing);
    assert.doesNotThrow(() => {
      metrics.counter({ name: 'calls_total', help: 'calls', labelNames: [] }).add({});
      metrics.increment('calls_total', { unexpected: 'label' });
    });
  });

  it('takes core API 1.0 reports: the first declares, a later one with other labels is dropped, not thrown', () => {
    const backend = new StrictBackend();
    const { logger, warnings } = warningsLogger();
    const metrics = guardMetrics(backend, logger);
    metrics.increment('legacy_calls_total', { provider: 'p' });
    metrics.increment('legacy_calls_total', { provider: 'p', outcome: 'OK' }); // threw "Added label" before
    metrics.increment('legacy_calls_total', { provider: 'q' }, 3);
    metrics.observe('legacy_calls_total', 1, { provider: 'p' }); // another kind under the same name
    metrics.set('legacy_usable', 1, { provider: 'p' });
    metrics.observe('legacy_seconds', 0.5);
    assert.deepEqual(
      backend.of('legacy_calls_total').map((report) => [report.labels, report.value]),
      [
        [{ provider: 'p' }, 1],
        [{ provider: 'q' }, 3],
      ],
    );
    assert.equal(backend.of('legacy_usable').length, 1);
    assert.equal(backend.of('legacy_seconds').length, 1);
    assert.equal(warnings.length, 1, 'one warning for the metric, however many drops');
    assert.equal(warnings[0]?.['metric'], 'legacy_calls_total');
  });

  it('guards once: a guarded metrics (and the no-op one) is returned as it is', () => {
    const guarded = guardMetrics(new StrictBackend(), warningsLogger().logger);
    assert.equal(guardMetrics(guarded, warningsLogger().logger), guarded);
    assert.equal(guardMetrics(noopMetrics, warningsLogger().logger), noopMetrics);
    assert.notEqual(guardMetrics(new StrictBackend(), warningsLogger().logger), guarded);
  });
});
