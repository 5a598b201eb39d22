import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  guardMetrics,
  HealthMonitor,
  silentLogger,
  TrousseauError,
  type Counter,
  type Gauge,
  type Histogram,
  type KeyProvider,
  type MetricsBackend,
  type ProviderStatus,
} from '../src/index.js';

/** A provider whose status is whatever the test sets. */
class StatusProvider implements KeyProvider {
  answer: () => Promise<ProviderStatus> = async () => ({ healthy: true, keyId: 'key-A' });
  encrypt(): never {
    throw new Error('not used');
  }
  decrypt(): never {
    throw new Error('not used');
  }
  status(): Promise<ProviderStatus> {
    return this.answer();
  }
  async close(): Promise<void> {}
}

/** Gauge values by `name{labels}`, as a Prometheus scrape would show them. */
class GaugeValues implements MetricsBackend {
  readonly values = new Map<string, number>();
  counter<L extends string>(): Counter<L> {
    return { add: () => undefined };
  }
  histogram<L extends string>(): Histogram<L> {
    return { observe: () => undefined };
  }
  gauge<L extends string>(options: { name: string }): Gauge<L> {
    const key = (labels: Readonly<Record<string, string>>): string =>
      `${options.name}${JSON.stringify(Object.entries(labels).sort())}`;
    return {
      set: (labels, value) => this.values.set(key(labels), value),
      remove: (labels) => this.values.delete(key(labels)),
    };
  }
}

function monitorOf(provider: KeyProvider, backend: MetricsBackend = new GaugeValues()): HealthMonitor {
  return new HealthMonitor({
    providers: new Map([['p', provider]]),
    intervalMs: 60_000,
    logger: silentLogger,
    metrics: guardMetrics(backend, silentLogger),
    clock: { now: () => Date.now() },
  });
}

describe('health monitor: the key is gone', () => {
  it('marks the key gone when status reports TROUSSEAU_ERR_PROVIDER_KEY_GONE, keeping the last key id', async () => {
    const provider = new StatusProvider();
    const monitor = monitorOf(provider);
    await monitor.refresh();
    provider.answer = async () => ({
      healthy: false,
      reason: 'key deleted',
      code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
    });
    await monitor.refresh();
    const health = monitor.get('p');
    assert.equal(health?.state, 'unhealthy');
    assert.equal(health.keyUnusable, true);
    assert.equal(health.keyId, 'key-A');
  });

  it('marks the key gone when status throws an error with that code', async () => {
    const provider = new StatusProvider();
    provider.answer = () =>
      Promise.reject(new TrousseauError('TROUSSEAU_ERR_PROVIDER_KEY_GONE', 'access to the key revoked'));
    const monitor = monitorOf(provider);
    await monitor.refresh();
    assert.equal(monitor.get('p')?.keyUnusable, true);
    assert.match(monitor.get('p')?.reason ?? '', /access to the key revoked/);
  });

  it('takes keyUnusable from a provider written for core API 1.0', async () => {
    const provider = new StatusProvider();
    provider.answer = async () => ({ healthy: false, reason: 'key disabled', keyUnusable: true });
    const monitor = monitorOf(provider);
    await monitor.refresh();
    assert.equal(monitor.get('p')?.keyUnusable, true);
  });

  it('does not call an outage, a refused login or a denial that is not about the key a gone key', async () => {
    for (const code of [
      'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
      'TROUSSEAU_ERR_PROVIDER_PERMISSION_DENIED',
      'TROUSSEAU_ERR_PROVIDER_KEY_UNAVAILABLE',
      undefined,
    ]) {
      const provider = new StatusProvider();
      provider.answer = async () => ({ healthy: false, reason: 'trouble', ...(code ? { code } : {}) });
      const monitor = monitorOf(provider);
      await monitor.refresh();
      assert.equal(monitor.get('p')?.state, 'unhealthy', String(code));
      assert.equal(monitor.get('p')?.keyUnusable, false, String(code));
    }
    const throwing = new StatusProvider();
    throwing.answer = () =>
      Promise.reject(new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'vault unreachable'));
    const monitor = monitorOf(throwing);
    await monitor.refresh();
    assert.equal(monitor.get('p')?.keyUnusable, false);
  });

  it('shows only the current key id in key_id_info, and the health in provider_healthy', async () => {
    const provider = new StatusProvider();
    const gauges = new GaugeValues();
    const monitor = monitorOf(provider, gauges);
    await monitor.refresh();
    provider.answer = async () => ({ healthy: true, keyId: 'key-B' });
    await monitor.refresh();
    const values = Object.fromEntries(gauges.values);
    delete values['provider_last_healthy_timestamp_seconds[["provider","p"]]'];
    assert.deepEqual(values, {
      'provider_healthy[["provider","p"]]': 1,
      'key_id_info[["key_id","key-B"],["provider","p"]]': 1,
    });
  });

  it('puts the time of the last healthy check in provider_last_healthy_timestamp_seconds, kept while unhealthy', async () => {
    const provider = new StatusProvider();
    const gauges = new GaugeValues();
    let now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const monitor = new HealthMonitor({
      providers: new Map([['p', provider]]),
      intervalMs: 60_000,
      logger: silentLogger,
      metrics: guardMetrics(gauges, silentLogger),
      clock: { now: () => now },
    });
    const lastHealthy = (): number | undefined =>
      gauges.values.get('provider_last_healthy_timestamp_seconds[["provider","p"]]');
    provider.answer = async () => ({ healthy: false, reason: 'vault sealed' });
    await monitor.refresh();
    assert.equal(lastHealthy(), undefined, 'no series before the first healthy check');
    provider.answer = async () => ({ healthy: true, keyId: 'key-A' });
    await monitor.refresh();
    assert.equal(lastHealthy(), Date.UTC(2030, 0, 1, 12, 0, 0) / 1000);
    now += 90_000;
    provider.answer = async () => ({ healthy: false, reason: 'vault sealed' });
    await monitor.refresh();
    assert.equal(lastHealthy(), Date.UTC(2030, 0, 1, 12, 0, 0) / 1000, 'an unhealthy check leaves it');
    now += 30_000;
    provider.answer = async () => ({ healthy: true, keyId: 'key-A' });
    await monitor.refresh();
    assert.equal(lastHealthy(), Date.UTC(2030, 0, 1, 12, 2, 0) / 1000);
  });
});

describe('health monitor: refresh', () => {
  it('answers a refresh asked during a round with a round that began after it', async () => {
    const provider = new StatusProvider();
    const monitor = monitorOf(provider);
    let releaseFirst: () => void = () => undefined;
    let checks = 0;
    provider.answer = () => {
      checks += 1;
      // The first round asks while the key is still there, and is held until the key is gone.
      if (checks === 1) {
        return new Promise((resolve) => {
          releaseFirst = () => resolve({ healthy: true, keyId: 'key-A' });
        });
      }
      return Promise.resolve({
        healthy: false,
        reason: 'key deleted',
        code: 'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      });
    };
    const first = monitor.refresh();
    // The key is deleted now, while the first round waits; two callers ask to know.
    const second = monitor.refresh();
    const third = monitor.refresh();
    assert.equal(second, third, 'callers arriving during a round share the next one');
    releaseFirst();
    await first;
    await Promise.all([second, third]);
    assert.equal(checks, 2);
    assert.equal(monitor.get('p')?.state, 'unhealthy');
    assert.equal(monitor.get('p')?.keyUnusable, true);
  });

  it('shares nothing once a round is over: the next refresh checks again', async () => {
    const provider = new StatusProvider();
    let checks = 0;
    provider.answer = async () => {
      checks += 1;
      return { healthy: true, keyId: 'key-A' };
    };
    const monitor = monitorOf(provider);
    await monitor.refresh();
    await monitor.refresh();
    assert.equal(checks, 2);
  });
});
