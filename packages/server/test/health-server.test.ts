import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { TrousseauError } from '@trousseau/core';
import { startTestServer, type TestServer } from './helpers.js';

interface HealthBody {
  status: string;
  encryptWith: string;
  keyId: string | null;
  reason: string | null;
  providers: { name: string; state: string; reason: string | null; keyId: string | null }[];
}

describe('HTTP side listener: probes and metrics, with real traffic through the socket', () => {
  let t: TestServer;
  let base: string;
  before(async () => {
    t = await startTestServer({ health: { listen: '127.0.0.1:0' } });
    const address = t.server.healthAddress;
    assert.ok(address !== undefined, 'the health listener is bound');
    base = `http://127.0.0.1:${address.port}`;
  });
  after(() => t.close());

  it('answers /livez while serving', async () => {
    const response = await fetch(`${base}/livez`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'ok\n');
  });

  it('answers /readyz and /healthz with each provider, its state and key id', async () => {
    for (const path of ['/readyz', '/healthz']) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as HealthBody;
      assert.equal(body.status, 'ok');
      assert.equal(body.encryptWith, 'main');
      const status = await t.client.status();
      assert.equal(body.keyId, status.key_id);
      assert.deepEqual(
        body.providers.map((provider) => [provider.name, provider.state, provider.keyId]),
        [['main', 'healthy', status.key_id]],
      );
    }
  });

  it('turns /readyz to 503 with the reason while the encrypting provider is unhealthy', async () => {
    t.faulty.faults.status = { healthy: false, reason: 'vault sealed' };
    try {
      await t.server.broker.refreshHealth();
      const response = await fetch(`${base}/readyz`);
      assert.equal(response.status, 503);
      const body = (await response.json()) as HealthBody;
      assert.equal(body.status, 'unhealthy');
      assert.equal(body.providers[0]?.reason, 'vault sealed');
      assert.equal((await fetch(`${base}/livez`)).status, 200, 'liveness does not depend on the backend');
    } finally {
      t.faulty.faults.status = undefined;
      await t.server.broker.refreshHealth();
    }
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
  });

  it('counts calls per API, rpc and outcome, times them, and exposes provider health and key id', async () => {
    const encrypted = await t.client.encrypt(randomBytes(32));
    await t.client.decrypt({ ciphertext: encrypted.ciphertext, keyId: encrypted.key_id });
    await t.client.v1Encrypt(Buffer.from('ping'));
    await t.client.encrypt(Buffer.alloc(0)).catch(() => undefined);
    t.faulty.faults.callError = new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'down');
    await t.client.encrypt(randomBytes(32)).catch(() => undefined);
    t.faulty.faults.callError = undefined;

    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    const value = (series: string): number => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      assert.ok(line !== undefined, `missing series ${series}`);
      return Number(line.split(' ')[1]);
    };
    assert.ok(value('trousseau_grpc_requests_total{api="v2",rpc="Encrypt",outcome="OK"}') >= 1);
    assert.ok(value('trousseau_grpc_requests_total{api="v2",rpc="Decrypt",outcome="OK"}') >= 1);
    assert.ok(value('trousseau_grpc_requests_total{api="v1beta1",rpc="Encrypt",outcome="OK"}') >= 1);
    assert.ok(value('trousseau_grpc_requests_total{api="v2",rpc="Encrypt",outcome="INVALID_ARGUMENT"}') >= 1);
    assert.ok(value('trousseau_grpc_requests_total{api="v2",rpc="Encrypt",outcome="UNAVAILABLE"}') >= 1);
    assert.ok(
      value('trousseau_grpc_request_duration_seconds_count{api="v2",rpc="Decrypt",outcome="OK"}') >= 1,
    );
    assert.ok(
      value(
        'trousseau_provider_request_duration_seconds_count{provider="main",operation="encrypt",outcome="UNAVAILABLE"}',
      ) >= 1,
    );
    assert.equal(value('trousseau_provider_healthy{provider="main"}'), 1);
    const status = await t.client.status();
    assert.equal(value(`trousseau_key_id_info{provider="main",key_id="${status.key_id}"}`), 1);
    assert.ok(
      value('trousseau_process_resident_memory_bytes') > 0,
      'default Node process metrics are included',
    );
  });

  it('answers 404 for anything else', async () => {
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });
});
