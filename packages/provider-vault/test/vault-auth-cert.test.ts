// TLS certificate login (auth/cert) with the client certificate configured for mTLS: the files are read
// again at every login (and in the background upkeep), so a certificate cert-manager renews is presented
// from then on; renewals present it too (Vault checks it again), and Status names Vault's reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProviderStatus } from '@trousseau/core';
import {
  createTestCertificates,
  issueClientCertificate,
  testRequestContext,
  type TestCertificates,
} from '@trousseau/testing';
import { startVaultEmulator, type VaultEmulator } from '@trousseau/testing/vault';
import { usingRealVault, type VaultBackend } from './backend.js';
import { createFixture, roundTrip, TestClock, type Fixture } from './helpers.js';

/** The emulator behind HTTPS, seen through the backend interface the fixture uses. */
function asBackend(emulator: VaultEmulator): VaultBackend {
  return {
    kind: 'emulator',
    url: emulator.url,
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

function assertUnhealthy(status: ProviderStatus, reason: RegExp): void {
  assert.ok(!status.healthy && reason.test(status.reason), `${JSON.stringify(status)} !~ ${reason}`);
  assert.equal(status.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED');
}

describe(
  'vault auth: TLS certificate',
  { skip: usingRealVault ? 'needs the emulator (test CA)' : false },
  () => {
    const clock = new TestClock();
    const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(3_000, undefined, clock);
    let pki: TestCertificates;
    /** Another CA the role trusts too (a CA migration), and one it does not. */
    let nextCa: TestCertificates;
    let stranger: TestCertificates;
    let emulator: VaultEmulator;
    let fixture: Fixture;

    before(async () => {
      [pki, nextCa, stranger] = await Promise.all([
        createTestCertificates(),
        createTestCertificates(),
        createTestCertificates(),
      ]);
      emulator = await startVaultEmulator({ clock, tls: { key: pki.serverKey, cert: pki.serverCert } });
      fixture = await createFixture(asBackend(emulator), clock);
      emulator.configureCertAuth({
        name: 'trousseau',
        certificate: `${pki.ca}${nextCa.ca}`,
        policies: [fixture.policy],
        tokenTtlSeconds: 60,
      });
    });
    after(async () => {
      await emulator.close();
      await fixture.cleanup();
    });

    const logins = (outcome = 'OK'): number =>
      fixture.metrics.count('vault_logins_total', { provider: 'vault-test', method: 'cert', outcome });
    const renewals = (outcome: string): number =>
      fixture.metrics.count('vault_token_renewals_total', { provider: 'vault-test', outcome });

    /** Writes a client certificate and key where the config points, as cert-manager does. */
    async function writeClient(
      prefix: string,
      client: { cert: string; key: string },
    ): Promise<{
      certFile: string;
      keyFile: string;
    }> {
      return {
        certFile: await fixture.writeFile(`${prefix}.crt`, client.cert),
        keyFile: await fixture.writeFile(`${prefix}.key`, client.key),
      };
    }

    async function open(prefix: string, client: { cert: string; key: string }, name = 'trousseau') {
      const files = await writeClient(prefix, client);
      const provider = await fixture.open({
        tls: { caFile: await fixture.writeFile('ca.pem', pki.ca), ...files },
        auth: { method: 'cert', name },
        keyRefreshIntervalSeconds: 60,
      });
      return { provider, files };
    }

    it('logs in with the client certificate and renews with it; the key never reaches a log line', async () => {
      const before = { logins: logins(), renewed: renewals('OK') };
      const { provider } = await open('plain', { cert: pki.clientCert, key: pki.clientKey });
      try {
        await roundTrip(provider);
        assert.equal(logins(), before.logins + 1);
        clock.advance(41_000);
        assert.ok((await provider.status(ctx())).healthy);
        assert.equal(renewals('OK'), before.renewed + 1, 'renewed: Vault checked the certificate again');
        assert.equal(logins(), before.logins + 1);
        await roundTrip(provider);
        const keyBody = pki.clientKey.split('\n')[1] ?? '';
        assert.ok(keyBody.length > 20 && !fixture.logger.lines.some((line) => line.includes(keyBody)));
      } finally {
        await provider.close();
      }
    });

    it('presents the certificate renewed on disk: a renewal Vault refuses for it leads to a login with it', async () => {
      const before = { logins: logins(), failed: renewals('UNAVAILABLE') };
      const { provider } = await open('rotated', { cert: pki.clientCert, key: pki.clientKey });
      try {
        await roundTrip(provider);
        // cert-manager issues the next certificate from the new CA: another client identity for Vault.
        await writeClient('rotated', await issueClientCertificate(nextCa));
        clock.advance(41_000);
        // The upkeep takes the new certificate up; Vault refuses to renew the old login's token for it
        // (client identity changed), so the provider logs in again, with the new certificate.
        assert.ok((await provider.status(ctx())).healthy);
        assert.equal(renewals('UNAVAILABLE'), before.failed + 1);
        assert.equal(logins(), before.logins + 2);
        await roundTrip(provider);
      } finally {
        await provider.close();
      }
    });

    it('reports why Vault refused the certificate, and heals when a good one is written', async () => {
      const { provider, files } = await open('refused', {
        cert: stranger.clientCert,
        key: stranger.clientKey,
      });
      try {
        assertUnhealthy(
          await provider.status(ctx()),
          /vault login failed: invalid certificate or no client certificate supplied/,
        );
        await writeClient(
          'refused',
          await issueClientCertificate(pki, { notAfter: new Date(Date.now() - 60_000) }),
        );
        assertUnhealthy(
          await provider.status(ctx()),
          /vault login failed \(500\): failed to verify client's certificate: x509: certificate has expired/,
        );
        // Caught between cert-manager's two writes: the certificate of one key, the other key.
        const next = await issueClientCertificate(pki);
        await fixture.writeFile(files.certFile, next.cert);
        assertUnhealthy(await provider.status(ctx()), /do not hold a certificate and its key/);
        await fixture.writeFile(files.keyFile, next.key);
        assert.ok((await provider.status(ctx())).healthy, 'no restart needed');
        await roundTrip(provider);
      } finally {
        await provider.close();
      }
    });

    it('names the role: a role whose CA did not sign the certificate refuses it', async () => {
      emulator.configureCertAuth({
        name: 'other',
        certificate: stranger.ca,
        policies: [],
        tokenTtlSeconds: 60,
      });
      const { provider } = await open('named', { cert: pki.clientCert, key: pki.clientKey }, 'other');
      try {
        assertUnhealthy(
          await provider.status(ctx()),
          /invalid certificate or no client certificate supplied/,
        );
      } finally {
        await provider.close();
      }
    });
  },
);
