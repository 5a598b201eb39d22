import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestCertificates, testRequestContext, type TestCertificates } from '@trousseau/testing';
import { startVaultEmulator, type VaultEmulator } from '@trousseau/testing/vault';
import { usingRealVault, type VaultBackend } from './backend.js';
import { createFixture, roundTrip, tokenAuth, type Fixture } from './helpers.js';

const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(3_000);

/** The emulator behind HTTPS, seen through the backend interface the fixture uses. */
function asBackend(emulator: VaultEmulator, url = emulator.url): VaultBackend {
  return {
    kind: 'emulator',
    url,
    transitMount: 'transit',
    emulator,
    createKey: async (name) => emulator.createKey(name),
    rotateKey: async (name) => emulator.rotateKey(name),
    setMinDecryptionVersion: async (name, version) => emulator.setMinDecryptionVersion(name, version),
    writePolicy: async (name, rules) => emulator.writePolicy(name, rules),
    createToken: async (options) => emulator.createToken(options),
    revokeToken: async (token) => emulator.revokeToken(token),
    configureAppRole: () => Promise.reject(new Error('not used')),
    close: () => emulator.close(),
  };
}

describe('vault over TLS', { skip: usingRealVault ? 'needs the emulator (test CA)' : false }, () => {
  let certificates: TestCertificates;
  let emulator: VaultEmulator;
  let fixture: Fixture;
  let auth: Record<string, unknown>;
  let files: { ca: string; cert: string; key: string };
  before(async () => {
    certificates = await createTestCertificates();
    emulator = await startVaultEmulator({
      tls: {
        key: certificates.serverKey,
        cert: certificates.serverCert,
        ca: certificates.ca,
        requestClientCert: true,
      },
    });
    const backend = asBackend(emulator);
    fixture = await createFixture(backend);
    ({ auth } = await tokenAuth(backend, fixture));
    files = {
      ca: await fixture.writeFile('ca.pem', certificates.ca),
      cert: await fixture.writeFile('client.pem', certificates.clientCert),
      key: await fixture.writeFile('client-key.pem', certificates.clientKey),
    };
  });
  after(async () => {
    await emulator.close();
    await fixture.cleanup();
  });

  it('verifies Vault against the test CA and presents a client certificate', async () => {
    assert.match(emulator.url, /^https:/);
    const provider = await fixture.open({
      auth,
      tls: { caFile: files.ca, certFile: files.cert, keyFile: files.key },
    });
    try {
      assert.ok((await provider.status(ctx())).healthy);
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it('checks the certificate against tls.serverName', async () => {
    const good = await fixture.open({
      auth,
      tls: { caFile: files.ca, certFile: files.cert, keyFile: files.key, serverName: 'localhost' },
    });
    const wrong = await fixture.open({
      auth,
      tls: { caFile: files.ca, certFile: files.cert, keyFile: files.key, serverName: 'vault.example.com' },
    });
    try {
      await roundTrip(good);
      const status = await wrong.status(ctx());
      assert.equal(status.healthy, false);
      assert.ok(!status.healthy && /TLS/.test(status.reason), JSON.stringify(status));
    } finally {
      await good.close();
      await wrong.close();
    }
  });

  it('refuses a server it cannot verify (no CA given), and fails without a client certificate', async () => {
    const noCa = await fixture.open({ auth, tls: { certFile: files.cert, keyFile: files.key } });
    const noClientCert = await fixture.open({ auth, tls: { caFile: files.ca } });
    try {
      const unverified = await noCa.status(ctx());
      assert.ok(
        !unverified.healthy && /TLS with vault failed/.test(unverified.reason),
        JSON.stringify(unverified),
      );
      assert.equal((await noClientCert.status(ctx())).healthy, false);
      await assert.rejects(noClientCert.encrypt(randomBytes(32), ctx()));
    } finally {
      await noCa.close();
      await noClientCert.close();
    }
  });

  it('skips verification only when insecureSkipVerify is set explicitly', async () => {
    const insecure = await fixture.open({
      auth,
      tls: { certFile: files.cert, keyFile: files.key, insecureSkipVerify: true },
    });
    try {
      await roundTrip(insecure);
    } finally {
      await insecure.close();
    }
  });
});
