import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isTrousseauError, isValidKeyId, type ProviderStatus } from '@trousseau/core';
import { RecordingMetrics, testRequestContext, waitUntil } from '@trousseau/testing';
import { AzureKeyProvider } from '../src/azure-provider.js';
import { parseKeyRef } from '../src/key-ref.js';
import { azureOptionsSchema } from '../src/options.js';
import provider from '../src/index.js';
import { startAzureFixture, testCertificates, type AzureFixture } from './helpers.js';

/** Deadline of an ordinary call: generous, so a loaded machine does not fail it (TLS, logins, RSA). */
const ctx = (timeoutMs = 15_000): ReturnType<typeof testRequestContext> => testRequestContext(timeoutMs);

async function rejectsWith(work: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(isTrousseauError(error), `expected a TrousseauError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function unhealthy(status: ProviderStatus): Extract<ProviderStatus, { healthy: false }> {
  if (status.healthy) assert.fail(`expected unhealthy, got ${JSON.stringify(status)}`);
  return status;
}

function healthyKeyId(status: ProviderStatus): string {
  assert.ok(status.healthy, `expected healthy, got ${JSON.stringify(status)}`);
  return status.keyId;
}

describe('azure provider', () => {
  let fixture: AzureFixture;
  before(async () => {
    fixture = await startAzureFixture();
  });
  after(() => fixture.cleanup());

  it('is declared as the built-in `azure` provider with a strict schema', () => {
    assert.equal(provider.kind, 'trousseau-provider');
    assert.equal(provider.name, 'azure');
    const parsed = azureOptionsSchema.parse({ vaultUrl: 'https://v.vault.azure.net/', keyName: 'k' });
    assert.equal(parsed.vaultUrl, 'https://v.vault.azure.net');
    assert.equal(parsed.algorithm, 'RSA-OAEP-256');
    assert.deepEqual(parsed.credential, { type: 'workloadIdentity' });
    assert.ok(
      !azureOptionsSchema.safeParse({ vaultUrl: 'https://v.vault.azure.net', keyName: 'k', extra: 1 })
        .success,
    );
    assert.ok(!azureOptionsSchema.safeParse({ vaultUrl: 'http://v.vault.azure.net', keyName: 'k' }).success);
    assert.ok(
      !azureOptionsSchema.safeParse({ vaultUrl: 'https://v.vault.azure.net', keyName: 'k_1' }).success,
    );
    const missing = azureOptionsSchema.safeParse({
      vaultUrl: 'https://v.vault.azure.net',
      keyName: 'k',
      credential: { type: 'servicePrincipal', tenantId: 't' },
    });
    assert.ok(!missing.success);
    assert.deepEqual(missing.error.issues.map((issue) => issue.path.join('.')).sort(), [
      'credential.clientId',
      'credential.clientSecret',
    ]);
    assert.ok(
      azureOptionsSchema.safeParse({
        vaultUrl: 'https://v.vault.azure.net',
        keyName: 'k',
        credential: { type: 'servicePrincipal', azureJsonFile: '/etc/kubernetes/azure.json' },
      }).success,
    );
  });

  it('reports a key id naming the vault, key and version, and wraps within the RSA-OAEP-256 bound', async () => {
    const p = fixture.provider();
    try {
      const keyId = healthyKeyId(await p.status(ctx()));
      const host = new URL(fixture.emulator.url).host;
      assert.match(
        keyId,
        new RegExp(`^azure:${host.replace('.', '\\.')}/kek/${fixture.firstVersion}:[0-9a-f]{16}$`),
      );
      assert.ok(isValidKeyId(keyId));
      assert.equal(p.capabilities.maxPlaintextBytes, 190, '2048-bit RSA-OAEP-256 wraps at most 190 bytes');
      const result = await p.encrypt(randomBytes(190), ctx());
      assert.equal(result.ciphertext.length, 256);
      assert.deepEqual(parseKeyRef(result.keyRef ?? ''), {
        keyName: 'kek',
        version: fixture.firstVersion,
        algorithm: 'RSA-OAEP-256',
      });
      await rejectsWith(p.encrypt(randomBytes(191), ctx()), 'TROUSSEAU_ERR_REQUEST_TOO_LARGE');
    } finally {
      await p.close();
    }
  });

  it('follows a rotation to a new key version; data of the old version still unwraps from it', async () => {
    const p = fixture.provider();
    try {
      const before = healthyKeyId(await p.status(ctx()));
      const plaintext = randomBytes(32);
      const old = await p.encrypt(plaintext, ctx());
      const rotated = await fixture.emulator.rotateKey('kek');
      const after = healthyKeyId(await p.status(ctx()));
      assert.notEqual(after, before, 'a new version is a new key id');
      assert.ok(after.includes(rotated.version));
      const fresh = await p.encrypt(plaintext, ctx());
      assert.equal(fresh.keyId, after);
      assert.equal(parseKeyRef(fresh.keyRef ?? '')?.version, rotated.version);
      fixture.emulator.clearRequests();
      const opened = await p.decrypt({ ciphertext: old.ciphertext, keyRef: old.keyRef ?? '' }, ctx());
      assert.deepEqual(Buffer.from(opened), plaintext);
      assert.ok(
        fixture.emulator.requests.some(
          (entry) => entry.path === `/keys/kek/${parseKeyRef(old.keyRef ?? '')?.version ?? ''}/unwrapkey`,
        ),
        'unwrap addressed the version that wrapped',
      );
      assert.equal(healthyKeyId(await p.status(ctx())), after, 'the key id does not flip back');
    } finally {
      await p.close();
    }
  });

  it('stays on a pinned key version across rotations', async () => {
    const pinned = fixture.firstVersion;
    const p = fixture.provider({ keyVersion: pinned });
    try {
      const before = healthyKeyId(await p.status(ctx()));
      await fixture.emulator.rotateKey('kek');
      assert.equal(healthyKeyId(await p.status(ctx())), before);
      const result = await p.encrypt(randomBytes(32), ctx());
      assert.equal(parseKeyRef(result.keyRef ?? '')?.version, pinned);
      assert.equal(result.keyId, before);
    } finally {
      await p.close();
    }
  });

  it('shows a disabled key version in status as unusable, refuses to wrap, and recovers when enabled', async () => {
    const p = fixture.provider();
    try {
      const keyId = healthyKeyId(await p.status(ctx()));
      const plaintext = randomBytes(32);
      const sealed = await p.encrypt(plaintext, ctx());
      const version = parseKeyRef(sealed.keyRef ?? '')?.version ?? '';
      fixture.emulator.setEnabled('kek', version, false);
      const status = unhealthy(await p.status(ctx()));
      assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
      assert.equal(status.keyId, keyId);
      assert.match(status.reason, /disabled/);
      assert.ok(status.reason.includes(version));
      await rejectsWith(p.encrypt(plaintext, ctx()), 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
      await rejectsWith(
        p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx()),
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      );
      fixture.emulator.setEnabled('kek', version, true);
      assert.equal(healthyKeyId(await p.status(ctx())), keyId);
      const opened = await p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx());
      assert.deepEqual(Buffer.from(opened), plaintext);
    } finally {
      await p.close();
    }
  });

  it('reports a removed role as the key gone, naming the role it needs', async () => {
    const p = fixture.provider();
    try {
      healthyKeyId(await p.status(ctx()));
      fixture.emulator.faults.forbidden = true;
      const status = unhealthy(await p.status(ctx()));
      assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
      assert.match(status.reason, /Key Vault Crypto User/);
      await rejectsWith(p.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_KEY_GONE');
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it('shows a token acquisition failure in status and recovers without a restart', async () => {
    const secretFile = join(fixture.dir, 'rotating-secret');
    await writeFile(secretFile, 'not-the-secret');
    const p = fixture.provider({
      credential: {
        type: 'servicePrincipal',
        tenantId: fixture.emulator.tenantId,
        clientId: fixture.emulator.clientId,
        clientSecret: { file: 'rotating-secret' },
      },
    });
    try {
      const status = unhealthy(await p.status(ctx()));
      assert.match(status.reason, /token acquisition from Entra ID failed/);
      assert.ok(!status.reason.includes('not-the-secret'), 'the secret never reaches a message');
      assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED', 'a login failure is not a gone key');
      await rejectsWith(p.encrypt(randomBytes(32), ctx()), 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED');
      await writeFile(secretFile, fixture.emulator.clientSecret);
      healthyKeyId(await p.status(ctx()));

      fixture.emulator.faults.tokenEndpointDown = true;
      fixture.emulator.revokeTokens();
      const down = unhealthy(await p.status(ctx()));
      assert.match(down.reason, /token acquisition|refused the token/);
      assert.ok(down.keyId !== undefined, 'the last good key id is kept');
      fixture.emulator.faults.reset();
      healthyKeyId(await p.status(ctx()));
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it('logs in again by itself when Key Vault refuses a revoked token', async () => {
    const p = fixture.provider();
    try {
      healthyKeyId(await p.status(ctx()));
      fixture.emulator.revokeTokens();
      fixture.emulator.clearRequests();
      const result = await p.encrypt(randomBytes(32), ctx());
      assert.ok(result.ciphertext.length > 0);
      assert.ok(fixture.emulator.requests.some((entry) => entry.kind === 'token' && entry.status === 200));
    } finally {
      await p.close();
    }
  });

  it('does not log in again after close(): a call in flight that meets a revoked token fails SHUTTING_DOWN', async () => {
    const p = fixture.provider();
    try {
      const sealed = await p.encrypt(randomBytes(32), ctx());
      // The token is revoked and Key Vault holds the unwrap below: it is answered 401 only after close().
      fixture.emulator.revokeTokens();
      fixture.emulator.clearRequests();
      fixture.emulator.faults.holdRequests = true;
      const arrived = fixture.emulator.received;
      const inFlight = p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx(60_000));
      const settled = inFlight.then(
        () => undefined,
        (error: unknown) => error,
      );
      await waitUntil(() => fixture.emulator.received > arrived, 'Key Vault has the unwrap');
      await p.close();
      fixture.emulator.faults.holdRequests = false;
      const error = await settled;
      assert.ok(isTrousseauError(error), `expected a TrousseauError, got ${String(error)}`);
      assert.equal(error.code, 'TROUSSEAU_ERR_SHUTTING_DOWN', error.message);
      // The call has settled, so its SDK pipeline (retries and logins included) has ended; the held
      // unwrap is answered once released.
      await waitUntil(
        () => fixture.emulator.requests.some((entry) => entry.kind === 'keyvault'),
        'Key Vault has answered the unwrap',
      );
      const requests = fixture.emulator.requests;
      assert.deepEqual(
        requests.filter((entry) => entry.kind === 'token'),
        [],
        'no new credential logged in after close()',
      );
      assert.ok(
        requests.every((entry) => entry.kind === 'keyvault' && entry.status === 401),
        `only refused unwraps reached the emulator: ${JSON.stringify(requests)}`,
      );
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it('maps throttling and outages to their codes and recovers without a restart', async () => {
    const p = fixture.provider({ maxRetries: 0 });
    try {
      const sealed = await p.encrypt(randomBytes(32), ctx());
      const open = (): Promise<Uint8Array> =>
        p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx());
      fixture.emulator.faults.failNext(1, 429, 0);
      await rejectsWith(open(), 'TROUSSEAU_ERR_PROVIDER_THROTTLED');
      fixture.emulator.faults.failNext(1, 503, 0);
      await rejectsWith(open(), 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
      fixture.emulator.faults.failNext(1, 500);
      await rejectsWith(open(), 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
      fixture.emulator.faults.dropConnections = true;
      await rejectsWith(open(), 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
      const down = unhealthy(await p.status(ctx()));
      assert.equal(down.code, 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'an outage is not a gone key');
      assert.ok(down.keyId !== undefined);
      fixture.emulator.faults.reset();
      assert.equal((await open()).length, 32);
      healthyKeyId(await p.status(ctx()));
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it('retries a throttled request within the deadline', async () => {
    const p = fixture.provider({ maxRetries: 2 });
    try {
      const sealed = await p.encrypt(randomBytes(32), ctx());
      fixture.emulator.faults.failNext(1, 429, 0);
      const opened = await p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx());
      assert.equal(opened.length, 32);
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it("gives up at the caller's deadline", async () => {
    const p = fixture.provider();
    try {
      const sealed = await p.encrypt(randomBytes(32), ctx());
      fixture.emulator.faults.latencyMs = 2_000;
      await rejectsWith(
        p.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx(100)),
        'TROUSSEAU_ERR_DEADLINE_EXCEEDED',
      );
    } finally {
      fixture.emulator.faults.reset();
      await p.close();
    }
  });

  it('rejects a key reference it did not write as an invalid ciphertext', async () => {
    const p = fixture.provider();
    try {
      const sealed = await p.encrypt(randomBytes(32), ctx());
      for (const keyRef of [
        '',
        'kek',
        'kek/not_hex/RSA-OAEP-256',
        'kek/a/b/RSA-OAEP',
        `kek/${fixture.firstVersion}/RSA1_5`,
      ]) {
        await rejectsWith(
          p.decrypt({ ciphertext: sealed.ciphertext, keyRef }, ctx()),
          'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
        );
      }
      // A version Key Vault does not know (deleted, or another vault's): the key is gone, not the data bad.
      await rejectsWith(
        p.decrypt({ ciphertext: sealed.ciphertext, keyRef: `kek/${'0'.repeat(32)}/RSA-OAEP-256` }, ctx()),
        'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
      );
    } finally {
      await p.close();
    }
  });

  it('wraps with RSA-OAEP when configured; the algorithm travels in the key reference', async () => {
    const big = await startAzureFixture({ size: 3072 });
    const oaep = big.provider({ algorithm: 'RSA-OAEP' });
    const oaep256 = big.provider();
    try {
      const keyId = healthyKeyId(await oaep.status(ctx()));
      assert.notEqual(
        keyId,
        healthyKeyId(await oaep256.status(ctx())),
        'the algorithm is part of the key id',
      );
      assert.equal(oaep.capabilities.maxPlaintextBytes, 384 - 42);
      const plaintext = randomBytes(32);
      const sealed = await oaep.encrypt(plaintext, ctx());
      assert.equal(sealed.ciphertext.length, 384);
      assert.equal(parseKeyRef(sealed.keyRef ?? '')?.algorithm, 'RSA-OAEP');
      const opened = await oaep256.decrypt(
        { ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' },
        ctx(),
      );
      assert.deepEqual(Buffer.from(opened), plaintext);
    } finally {
      await oaep.close();
      await oaep256.close();
      await big.cleanup();
    }
  });

  it('logs in with workload identity (federated token file) and with an azure.json file', async () => {
    await writeFile(join(fixture.dir, 'sa-token'), 'projected-service-account-token');
    fixture.emulator.clientAssertion = 'projected-service-account-token';
    await writeFile(
      join(fixture.dir, 'azure.json'),
      JSON.stringify({
        cloud: 'AzurePublicCloud',
        tenantId: fixture.emulator.tenantId,
        subscriptionId: 'ignored',
        aadClientId: fixture.emulator.clientId,
        aadClientSecret: fixture.emulator.clientSecret,
        resourceGroup: 'ignored',
        location: 'westeurope',
      }),
    );
    const workload = fixture.provider({
      credential: {
        type: 'workloadIdentity',
        clientId: fixture.emulator.clientId,
        tenantId: fixture.emulator.tenantId,
        tokenFile: 'sa-token',
      },
    });
    const azureJson = fixture.provider({
      credential: { type: 'servicePrincipal', azureJsonFile: 'azure.json' },
    });
    try {
      healthyKeyId(await workload.status(ctx()));
      healthyKeyId(await azureJson.status(ctx()));
      await writeFile(join(fixture.dir, 'sa-token'), 'some-other-token');
      const refused = fixture.provider({
        credential: {
          type: 'workloadIdentity',
          clientId: fixture.emulator.clientId,
          tenantId: fixture.emulator.tenantId,
          tokenFile: 'sa-token',
        },
      });
      try {
        assert.match(unhealthy(await refused.status(ctx())).reason, /token acquisition/);
      } finally {
        await refused.close();
      }
    } finally {
      fixture.emulator.clientAssertion = undefined;
      await workload.close();
      await azureJson.close();
    }
  });

  it('reads the key once for a burst of first encrypts', async () => {
    const p = fixture.provider();
    try {
      fixture.emulator.clearRequests();
      const results = await Promise.all(Array.from({ length: 16 }, () => p.encrypt(randomBytes(32), ctx())));
      assert.equal(new Set(results.map((result) => result.keyId)).size, 1);
      const latestReads = fixture.emulator.requests.filter(
        (entry) => entry.method === 'GET' && entry.path === '/keys/kek/' && entry.status === 200,
      );
      assert.equal(latestReads.length, 1);
    } finally {
      await p.close();
    }
  });

  it('declares its instruments and reports every call with the provider label and a gRPC outcome', async () => {
    const metrics = new RecordingMetrics();
    const p = new AzureKeyProvider(azureOptionsSchema.parse(fixture.options()), fixture.context(metrics));
    try {
      await p.status(ctx());
      await p.encrypt(randomBytes(32), ctx());
      assert.deepEqual([...metrics.declared.keys()].filter((name) => name.startsWith('azure_')).sort(), [
        'azure_key_usable',
        'azure_request_duration_seconds',
        'azure_requests_total',
      ]);
      const calls = (operation: string, outcome: string): number =>
        metrics.count('azure_requests_total', { provider: 'azure', operation, outcome });
      assert.equal(calls('getKey', 'OK'), 1);
      assert.equal(calls('wrapKey', 'OK'), 1);
      assert.equal(metrics.gauges.get(RecordingMetrics.key('azure_key_usable', { provider: 'azure' })), 1);
      assert.ok(metrics.observations.every((entry) => entry.labels.provider === 'azure'));
      await rejectsWith(
        p.decrypt(
          { ciphertext: randomBytes(256), keyRef: `kek/${fixture.firstVersion}/RSA-OAEP-256` },
          ctx(),
        ),
        'TROUSSEAU_ERR_CIPHERTEXT_INVALID',
      );
      assert.equal(calls('unwrapKey', 'INVALID_ARGUMENT'), 1);
    } finally {
      await p.close();
    }
  });

  it('shows when the key version and the trusted CA bundle expire in credential_expiry_timestamp_seconds', async () => {
    const { version } = await fixture.emulator.createKey('expiring');
    // Key Vault's own update call sets the version's expiry (attributes.exp, Unix seconds).
    const expires = Math.floor(Date.now() / 1000) + 30 * 24 * 3600;
    const answer = await fetchOverTestCa(
      `${fixture.emulator.url}/keys/expiring/${version}?api-version=7.4`,
      fixture.emulator.issueToken(),
      JSON.stringify({ attributes: { exp: expires } }),
    );
    assert.equal(answer, 200);
    const metrics = new RecordingMetrics();
    const expiry = (credential: string): number | undefined =>
      metrics.gauges.get(
        RecordingMetrics.key('credential_expiry_timestamp_seconds', { provider: 'azure', credential }),
      );
    const p = new AzureKeyProvider(
      azureOptionsSchema.parse(fixture.options({ keyName: 'expiring' })),
      fixture.context(metrics),
    );
    try {
      healthyKeyId(await p.status(ctx()));
      assert.equal(expiry('key'), expires);
      // The test CA is made valid for 365 days when the file's fixture starts.
      const caExpiry = expiry('tls_ca') ?? 0;
      const inAYear = Date.now() / 1000 + 365 * 24 * 3600;
      assert.ok(Math.abs(caExpiry - inAYear) < 3600, `CA expiry ${caExpiry}, expected about ${inAYear}`);
    } finally {
      await p.close();
    }
    const unexpiring = new RecordingMetrics();
    const q = new AzureKeyProvider(azureOptionsSchema.parse(fixture.options()), fixture.context(unexpiring));
    try {
      healthyKeyId(await q.status(ctx()));
      assert.equal(
        unexpiring.gauges.get(
          RecordingMetrics.key('credential_expiry_timestamp_seconds', {
            provider: 'azure',
            credential: 'key',
          }),
        ),
        undefined,
        'a key version without an expiry date has no series',
      );
    } finally {
      await q.close();
    }
  });
});

/** A PATCH to the emulator over TLS with the test CA, as Key Vault's REST API takes it; the HTTP status. */
async function fetchOverTestCa(url: string, token: string, body: string): Promise<number> {
  const { ca } = await testCertificates();
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        method: 'PATCH',
        ca,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
