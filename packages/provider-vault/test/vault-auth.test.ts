import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  createRequestScope,
  isTrousseauError,
  silentLogger,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import type { VaultKeyProvider } from '../src/index.js';
import { startBackend, usingRealVault, type VaultBackend } from './backend.js';
import {
  createFixture,
  eventually,
  RecordingMetrics,
  roundTrip,
  TestClock,
  tokenAuth,
  useVaultBackend,
  type Fixture,
} from './helpers.js';

const emulatorOnly = usingRealVault ? 'needs the emulator (clock, faults or Kubernetes auth)' : false;

function assertUnhealthy(status: ProviderStatus, reason: RegExp): void {
  assert.equal(status.healthy, false, `expected unhealthy, got ${JSON.stringify(status)}`);
  assert.ok(!status.healthy && reason.test(status.reason), `reason ${JSON.stringify(status)} !~ ${reason}`);
}

/** Counts from now on (the fixture's metrics are shared by the tests of a suite). */
function counter(fixture: Fixture): (name: string, labels: Record<string, string>) => number {
  const start = new Map(fixture.metrics.counters);
  return (name, labels) => {
    const key = RecordingMetrics.key(name, labels);
    return (fixture.metrics.counters.get(key) ?? 0) - (start.get(key) ?? 0);
  };
}

function requestsTo(backend: VaultBackend, path: string): number {
  return backend.emulator?.requests.filter((request) => request.path === path).length ?? 0;
}

/**
 * Starts the provider's token maintenance (a renewal or login when due) and returns once its request
 * to `path` reached Vault, which answers it only after `latencyMs`; later requests are answered at once.
 * Maintenance is started by a status check whose caller gives up at once, so that nothing else the
 * check would do (key read, probe) runs: the maintenance goes on alone.
 */
async function startSlowMaintenance(
  provider: VaultKeyProvider,
  backend: VaultBackend,
  path: string,
  latencyMs: number,
): Promise<{ status: Promise<ProviderStatus> }> {
  const emulator = backend.emulator;
  assert.ok(emulator !== undefined);
  const before = requestsTo(backend, path);
  emulator.faults.latencyMs = latencyMs;
  const scope = createRequestScope({ deadline: Date.now() + 10_000, logger: silentLogger });
  const status = provider.status(scope.context);
  try {
    await eventually(() => requestsTo(backend, path) > before);
  } finally {
    emulator.faults.latencyMs = 0;
    scope.cancel('the test only wanted the maintenance started');
  }
  return { status };
}

describe('vault auth: static token', () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);

  it('looks the token up at start and serves calls with it; the token is never logged', async () => {
    const { auth, token } = await tokenAuth(vault.backend, vault.fixture);
    const provider = await vault.fixture.open({ auth });
    try {
      if (vault.backend.emulator !== undefined)
        assert.ok(requestsTo(vault.backend, '/v1/auth/token/lookup-self') >= 1);
      await roundTrip(provider);
      assert.ok((await provider.status(ctx())).healthy);
      assert.ok(
        !vault.fixture.logger.lines.some((line) => line.includes(token)),
        'the token reached a log line',
      );
    } finally {
      await provider.close();
    }
  });

  it('turns unhealthy with the reason when the token is revoked, and recovers from a new token in the file', async () => {
    const { auth, token, file } = await tokenAuth(vault.backend, vault.fixture, { file: 'revoked-token' });
    const provider = await vault.fixture.open({ auth });
    try {
      await roundTrip(provider);
      await vault.backend.revokeToken(token);
      const status = await provider.status(ctx());
      assertUnhealthy(status, /token (expired or revoked|expired)/);
      assert.ok(
        !status.healthy && status.code === 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        'a dead token is not a dead key',
      );
      assert.ok(!status.healthy && status.keyId !== undefined, 'keeps the last good key id');
      await assert.rejects(provider.encrypt(randomBytes(32), ctx()), (error: unknown) => {
        assert.ok(isTrousseauError(error));
        assert.equal(error.code, 'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED');
        assert.ok(!error.message.includes(token));
        return true;
      });
      const fresh = await vault.backend.createToken({ policies: [vault.fixture.policy] });
      await vault.fixture.writeFile(file, fresh);
      assert.ok((await provider.status(ctx())).healthy, 'recovers as soon as a valid token is given');
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it(
    'says "token expired" when a static token outlives its TTL, and heals from the file',
    { skip: emulatorOnly },
    async () => {
      const { auth, file } = await tokenAuth(vault.backend, vault.fixture, {
        ttlSeconds: 60,
        renewable: false,
        file: 'short-token',
      });
      const provider = await vault.fixture.open({ auth });
      try {
        await roundTrip(provider);
        vault.clock.advance(61_000);
        assertUnhealthy(await provider.status(ctx()), /token expired/);
        await assert.rejects(provider.encrypt(randomBytes(32), ctx()), /token expired/);
        await vault.fixture.writeFile(
          file,
          await vault.backend.createToken({ policies: [vault.fixture.policy], ttlSeconds: 600 }),
        );
        assert.ok((await provider.status(ctx())).healthy);
        await roundTrip(provider);
      } finally {
        await provider.close();
      }
    },
  );

  it('renews a renewable static token at two thirds of its TTL', { skip: emulatorOnly }, async () => {
    const { auth } = await tokenAuth(vault.backend, vault.fixture, {
      ttlSeconds: 60,
      file: 'renewable-token',
    });
    const provider = await vault.fixture.open({ auth });
    try {
      const renewals = { provider: 'vault-test', outcome: 'OK' };
      const before = vault.fixture.metrics.count('vault_token_renewals_total', renewals);
      vault.clock.advance(30_000);
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(
        vault.fixture.metrics.count('vault_token_renewals_total', renewals),
        before,
        'too early to renew',
      );
      vault.clock.advance(12_000);
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(vault.fixture.metrics.count('vault_token_renewals_total', renewals), before + 1);
      // 72 s after creation: alive only because it was renewed.
      vault.clock.advance(30_000);
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it(
    'keeps a token adopted while the renewal of the one it replaced was in flight, when that renewal fails',
    { skip: emulatorOnly },
    async () => {
      const { auth, token, file } = await tokenAuth(vault.backend, vault.fixture, {
        ttlSeconds: 60,
        file: 'raced-token',
      });
      const provider = await vault.fixture.open({ auth, keyRefreshIntervalSeconds: 60 });
      const failedRenewals = { provider: 'vault-test', outcome: 'UNAVAILABLE' };
      try {
        await roundTrip(provider);
        const failuresBefore = vault.fixture.metrics.count('vault_token_renewals_total', failedRenewals);
        vault.clock.advance(41_000);
        // The renewal of token A is on its way and Vault takes its time answering it.
        const { status } = await startSlowMaintenance(
          provider,
          vault.backend,
          '/v1/auth/token/renew-self',
          1_000,
        );
        // Meanwhile A is revoked and B written to the file: a call gets 403 and the provider adopts B.
        await vault.backend.revokeToken(token);
        await vault.fixture.writeFile(
          file,
          await vault.backend.createToken({ policies: [vault.fixture.policy] }),
        );
        await roundTrip(provider);
        // Then Vault refuses the renewal of A.
        await eventually(
          () => vault.fixture.metrics.count('vault_token_renewals_total', failedRenewals) > failuresBefore,
        );
        await status;
        // B stays in use: calls go out with it, none is refused and makes the provider look B up again.
        vault.backend.emulator?.clearRequests();
        await roundTrip(provider);
        const requests = vault.backend.emulator?.requests.map((request) => request.path) ?? [];
        assert.deepEqual(
          requests.filter((path) => !path.startsWith('/v1/sys/health')),
          [`/v1/transit/encrypt/${vault.fixture.keyName}`, `/v1/transit/decrypt/${vault.fixture.keyName}`],
          'the provider went back to the replaced token',
        );
      } finally {
        await provider.close();
      }
    },
  );
});

describe('vault auth: AppRole', () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);

  async function appRole(mount: string, ttlSeconds = 60): Promise<Record<string, unknown>> {
    const { roleId, secretId } = await vault.backend.configureAppRole({
      mount,
      roleName: 'kms',
      policies: [vault.fixture.policy],
      tokenTtlSeconds: ttlSeconds,
    });
    return {
      method: 'approle',
      mount,
      roleId: { file: await vault.fixture.writeFile(`${mount}-role-id`, roleId) },
      secretId: { file: await vault.fixture.writeFile(`${mount}-secret-id`, secretId) },
    };
  }

  it('logs in on a custom mount and serves calls; secrets never reach logs', async () => {
    const auth = await appRole('approle-kms');
    const provider = await vault.fixture.open({ auth });
    try {
      await roundTrip(provider);
      assert.equal(
        vault.fixture.metrics.count('vault_logins_total', {
          provider: 'vault-test',
          method: 'approle',
          outcome: 'OK',
        }),
        1,
      );
      if (vault.backend.emulator !== undefined)
        assert.equal(requestsTo(vault.backend, '/v1/auth/approle-kms/login'), 1);
      const secret = (auth.secretId as { file: string }).file;
      const secretValue = await vault.fixture.context().secrets.read({ file: secret });
      assert.ok(!vault.fixture.logger.lines.some((line) => line.includes(secretValue)));
    } finally {
      await provider.close();
    }
  });

  it("reports a refused login in Status with Vault's reason", async () => {
    const auth = await appRole('approle-bad');
    await vault.fixture.writeFile('approle-bad-secret-id', 'not-the-secret-id');
    const provider = await vault.fixture.open({ auth });
    try {
      assertUnhealthy(await provider.status(ctx()), /login failed: invalid secret id/);
      assert.ok(
        vault.fixture.metrics.count('vault_logins_total', {
          provider: 'vault-test',
          method: 'approle',
          outcome: 'UNAVAILABLE',
        }) >= 1,
      );
    } finally {
      await provider.close();
    }
  });

  it('renews before expiry, then logs in again when renewal fails', { skip: emulatorOnly }, async () => {
    const count = counter(vault.fixture);
    const auth = await appRole('approle-renew');
    const provider = await vault.fixture.open({ auth });
    const logins = { provider: 'vault-test', method: 'approle', outcome: 'OK' };
    const renewed = { provider: 'vault-test', outcome: 'OK' };
    const failed = { provider: 'vault-test', outcome: 'UNAVAILABLE' };
    try {
      assert.equal(count('vault_logins_total', logins), 1);
      vault.clock.advance(41_000);
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(count('vault_token_renewals_total', renewed), 1);
      assert.equal(count('vault_logins_total', logins), 1, 'renewed, not replaced');
      vault.clock.advance(41_000);
      vault.backend.emulator?.faults.failNext(3, 500, { path: 'auth/token/renew-self' });
      assert.ok((await provider.status(ctx())).healthy);
      assert.equal(count('vault_token_renewals_total', failed), 1);
      assert.equal(count('vault_logins_total', logins), 2, 'a failed renewal leads to a new login');
      await roundTrip(provider);
    } finally {
      await provider.close();
    }
  });

  it(
    'runs one login at a time: a call finding the token expired joins the replacement under way',
    { skip: emulatorOnly },
    async () => {
      const count = counter(vault.fixture);
      const roleId = randomBytes(16).toString('hex');
      const secretId = randomBytes(16).toString('hex');
      vault.backend.emulator?.configureAppRole({
        mount: 'approle-once',
        roleName: 'kms',
        roleId,
        secretId,
        policies: [vault.fixture.policy],
        tokenTtlSeconds: 60,
        renewable: false,
      });
      const provider = await vault.fixture.open({
        auth: {
          method: 'approle',
          mount: 'approle-once',
          roleId: { file: await vault.fixture.writeFile('once-role-id', roleId) },
          secretId: { file: await vault.fixture.writeFile('once-secret-id', secretId) },
        },
        keyRefreshIntervalSeconds: 60,
      });
      const logins = { provider: 'vault-test', method: 'approle', outcome: 'OK' };
      try {
        await roundTrip(provider);
        assert.equal(count('vault_logins_total', logins), 1);
        // A non-renewable token is replaced by a login at two thirds of its TTL; Vault is slow to answer.
        vault.clock.advance(41_000);
        const { status } = await startSlowMaintenance(
          provider,
          vault.backend,
          '/v1/auth/approle-once/login',
          1_000,
        );
        // While that login is under way the token expires: a call needs a new one and waits for it.
        vault.clock.advance(20_000);
        await roundTrip(provider);
        await status;
        assert.equal(count('vault_logins_total', logins), 2, 'two logins ran at once');
        assert.equal(requestsTo(vault.backend, '/v1/auth/approle-once/login'), 2);
      } finally {
        await provider.close();
      }
    },
  );

  it('logs in again after the token expired, without a restart', { skip: emulatorOnly }, async () => {
    const count = counter(vault.fixture);
    const auth = await appRole('approle-expire');
    const provider = await vault.fixture.open({ auth });
    const logins = { provider: 'vault-test', method: 'approle', outcome: 'OK' };
    try {
      await roundTrip(provider);
      vault.clock.advance(120_000);
      await roundTrip(provider);
      assert.equal(count('vault_logins_total', logins), 2);
    } finally {
      await provider.close();
    }
  });

  it(
    'logs in again when Vault answers 403 to a token it let expire (clocks disagree)',
    { skip: emulatorOnly },
    async () => {
      const vaultClock = new TestClock();
      const skewed = await startBackend({ clock: vaultClock });
      const skewedFixture = await createFixture(skewed);
      try {
        const { roleId, secretId } = await skewed.configureAppRole({
          mount: 'approle',
          roleName: 'kms',
          policies: [skewedFixture.policy],
          tokenTtlSeconds: 60,
        });
        const provider = await skewedFixture.open({
          auth: {
            method: 'approle',
            roleId: { file: await skewedFixture.writeFile('role-id', roleId) },
            secretId: { file: await skewedFixture.writeFile('secret-id', secretId) },
          },
        });
        try {
          await roundTrip(provider);
          vaultClock.advance(61_000);
          await roundTrip(provider);
          const logins = { provider: 'vault-test', method: 'approle', outcome: 'OK' };
          assert.equal(skewedFixture.metrics.count('vault_logins_total', logins), 2);
        } finally {
          await provider.close();
        }
      } finally {
        await skewed.close();
        await skewedFixture.cleanup();
      }
    },
  );
});

describe('vault auth: Kubernetes', { skip: emulatorOnly }, () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);

  it('logs in with the service-account token file, re-read at every login', async () => {
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    const issuer = emulator.configureKubernetesAuth({
      mount: 'k8s-cluster',
      role: 'trousseau',
      boundServiceAccountNames: ['trousseau'],
      boundNamespaces: ['kube-system'],
      policies: [vault.fixture.policy],
      tokenTtlSeconds: 60,
    });
    const first = issuer.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' });
    const tokenFile = await vault.fixture.writeFile('sa-token', first);
    const provider = await vault.fixture.open({
      auth: { method: 'kubernetes', role: 'trousseau', mount: 'k8s-cluster', tokenFile },
    });
    try {
      await roundTrip(provider);
      assert.equal(requestsTo(vault.backend, '/v1/auth/k8s-cluster/login'), 1);
      // The kubelet rotates the projected token; the old one stops working.
      await vault.fixture.writeFile(
        tokenFile,
        issuer.issueServiceAccountToken({ name: 'trousseau', namespace: 'kube-system' }),
      );
      issuer.revokeServiceAccountToken(first);
      // Past the Vault token's TTL the provider must log in again, with the new file content.
      vault.clock.advance(120_000);
      await roundTrip(provider);
      assert.equal(requestsTo(vault.backend, '/v1/auth/k8s-cluster/login'), 2);
      const logins = { provider: 'vault-test', method: 'kubernetes', outcome: 'OK' };
      assert.equal(vault.fixture.metrics.count('vault_logins_total', logins), 2);
      assert.ok(
        !vault.fixture.logger.lines.some((line) => line.includes(first)),
        'the service-account token was logged',
      );
    } finally {
      await provider.close();
    }
  });

  it('reports a service account the role does not bind', async () => {
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    const issuer = emulator.configureKubernetesAuth({
      mount: 'k8s-other',
      role: 'trousseau',
      boundServiceAccountNames: ['trousseau'],
      boundNamespaces: ['kube-system'],
      policies: [vault.fixture.policy],
      tokenTtlSeconds: 3600,
    });
    const tokenFile = await vault.fixture.writeFile(
      'sa-token-other',
      issuer.issueServiceAccountToken({ name: 'default', namespace: 'default' }),
    );
    const provider = await vault.fixture.open({
      auth: { method: 'kubernetes', role: 'trousseau', mount: 'k8s-other', tokenFile },
    });
    try {
      assertUnhealthy(await provider.status(ctx()), /login failed/);
    } finally {
      await provider.close();
    }
  });
});
