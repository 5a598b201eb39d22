import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RequestContext } from '@trousseau/core';
import { testRequestContext, waitUntil } from '@trousseau/testing';
import { usingRealVault } from './backend.js';
import { RecordingMetrics, roundTrip, tokenAuth, useVaultBackend, type Fixture } from './helpers.js';

const emulatorOnly = usingRealVault ? 'needs the emulator (clock, faults or Kubernetes auth)' : false;

const LABELS = { provider: 'vault-test' };

/** The token gauges as a scrape would show them: undefined when the series is absent. */
function tokenGauges(fixture: Fixture): { expiry: number | undefined; ttl: number | undefined } {
  return {
    expiry: fixture.metrics.gauges.get(RecordingMetrics.key('vault_token_expiry_timestamp_seconds', LABELS)),
    ttl: fixture.metrics.gauges.get(RecordingMetrics.key('vault_token_ttl_seconds', LABELS)),
  };
}

function assertNear(actual: number | undefined, expected: number, slack: number, what: string): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= slack,
    `${what}: ${actual} is not within ${slack} of ${expected}`,
  );
}

describe('vault token metrics: expiry and TTL, for the alert on a token running out unrenewed', () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);

  it('shows a static token’s expiry (Unix seconds) and the TTL its lookup gave', async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture, { ttlSeconds: 600, file: 'ttl-token' });
    const opened = vault.clock.now() / 1000;
    const provider = await vault.fixture.open({ auth });
    try {
      await roundTrip(provider);
      const { expiry, ttl } = tokenGauges(vault.fixture);
      // A real Vault may have counted a second off the TTL by the time of the lookup.
      assertNear(ttl, 600, 2, 'vault_token_ttl_seconds');
      assertNear(expiry, opened + 600, 3, 'vault_token_expiry_timestamp_seconds');
    } finally {
      await provider.close();
    }
  });

  it('moves the expiry forward when it renews the token', { skip: emulatorOnly }, async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture, { ttlSeconds: 60, file: 'renew-token' });
    const provider = await vault.fixture.open({ auth });
    try {
      const first = tokenGauges(vault.fixture).expiry;
      assertNear(first, vault.clock.now() / 1000 + 60, 2, 'expiry after the lookup');
      vault.clock.advance(42_000);
      assert.ok((await provider.status(ctx())).healthy);
      const renewed = tokenGauges(vault.fixture);
      assertNear(renewed.expiry, vault.clock.now() / 1000 + 60, 2, 'expiry after the renewal');
      assert.ok((renewed.expiry ?? 0) > (first ?? 0) + 40, 'the renewal moved the expiry forward');
      assert.equal(renewed.ttl, 60);
    } finally {
      await provider.close();
    }
  });

  it('shows a login’s token from the TTL of the login answer', async () => {
    const { roleId, secretId } = await vault.backend.configureAppRole({
      mount: 'approle-metrics',
      roleName: 'kms',
      policies: [vault.fixture.policy],
      tokenTtlSeconds: 120,
    });
    const before = vault.clock.now() / 1000;
    const provider = await vault.fixture.open({
      auth: {
        method: 'approle',
        mount: 'approle-metrics',
        roleId: { file: await vault.fixture.writeFile('metrics-role-id', roleId) },
        secretId: { file: await vault.fixture.writeFile('metrics-secret-id', secretId) },
      },
    });
    try {
      await roundTrip(provider);
      const { expiry, ttl } = tokenGauges(vault.fixture);
      assert.equal(ttl, 120);
      assertNear(expiry, before + 120, 3, 'vault_token_expiry_timestamp_seconds');
    } finally {
      await provider.close();
    }
  });

  it(
    'has no series for a token without TTL, and drops the series of the token it replaced',
    {
      skip: emulatorOnly,
    },
    async () => {
      const { auth, file } = await tokenAuth(vault.backend, vault.fixture, {
        ttlSeconds: 600,
        file: 'replaced-token',
      });
      const provider = await vault.fixture.open({ auth });
      try {
        assertNear(tokenGauges(vault.fixture).expiry, vault.clock.now() / 1000 + 600, 2, 'the TTL token');
        const root = vault.backend.emulator?.rootToken;
        assert.ok(root !== undefined);
        // A token without TTL written to the file: the maintenance round due at two thirds of the old
        // token's TTL re-reads the file and adopts it, in the background.
        await vault.fixture.writeFile(file, `${root}\n`);
        vault.clock.advance(401_000);
        assert.ok((await provider.status(ctx())).healthy);
        await waitUntil(
          () => tokenGauges(vault.fixture).expiry === undefined,
          'the token gauges drop the replaced token',
        );
        assert.deepEqual(tokenGauges(vault.fixture), { expiry: undefined, ttl: undefined });
      } finally {
        await provider.close();
      }
    },
  );
});
