// Vault Agent / Vault Proxy on the node: with `auth.method: agent` Trousseau sends no token and the agent
// adds its own; a dead agent token is an auth failure (the agent must log in again), not the key gone.
// The alternative, the agent's token file sink read by `auth.method: token`, heals by the file.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ProviderStatus, RequestContext } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { startVaultAgent, type VaultAgent, type VaultAgentOptions } from '@trousseau/testing/vault';
import { providerPolicy, usingRealVault } from './backend.js';
import { roundTrip, useVaultBackend } from './helpers.js';

const emulatorOnly = usingRealVault ? 'needs the emulator (the Vault Agent stand-in)' : false;

function assertUnhealthy(status: ProviderStatus, code: string, reason: RegExp): void {
  assert.ok(!status.healthy && reason.test(status.reason), `${JSON.stringify(status)} !~ ${reason}`);
  assert.equal(status.code, code, status.reason);
}

describe('vault through a Vault Agent', { skip: emulatorOnly }, () => {
  const vault = useVaultBackend();
  const ctx = (): RequestContext => testRequestContext(3_000, undefined, vault.clock);
  let roles = 0;

  /** An agent in front of the emulator, logged in with an AppRole of the fixture's policy. */
  async function agent(options: Partial<VaultAgentOptions> = {}): Promise<VaultAgent> {
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    roles += 1;
    const credentials = { role_id: `agent-role-${roles}`, secret_id: `agent-secret-${roles}` };
    emulator.configureAppRole({
      mount: 'approle-agent',
      roleName: `agent-${roles}`,
      roleId: credentials.role_id,
      secretId: credentials.secret_id,
      policies: [vault.fixture.policy],
      tokenTtlSeconds: 60,
      tokenMaxTtlSeconds: 120,
    });
    return startVaultAgent({
      vault: emulator.url,
      autoAuth: { mount: 'approle-agent', credentials: () => credentials },
      socketPath: join(vault.fixture.dir, `agent-${roles}.sock`),
      sinkFile: join(vault.fixture.dir, `agent-${roles}.token`),
      clock: vault.clock,
      ...options,
    });
  }

  it('sends no token over the unix socket: the agent adds its own, Trousseau holds no credential', async () => {
    const proxy = await agent();
    const provider = await vault.fixture.open({ address: proxy.url, auth: { method: 'agent' } });
    try {
      await roundTrip(provider);
      assert.ok((await provider.status(ctx())).healthy);
      assert.ok(proxy.requests.length >= 4);
      assert.ok(
        proxy.requests.every((request) => !request.clientToken),
        'Trousseau sent a token',
      );
      const token = await readFile(join(vault.fixture.dir, `agent-${roles}.token`), 'utf8');
      assert.ok(!vault.fixture.logger.lines.some((line) => line.includes(token)));
      assert.equal(
        vault.fixture.metrics.count('vault_logins_total', {
          provider: 'vault-test',
          method: 'agent',
          outcome: 'OK',
        }),
        0,
      );
    } finally {
      await provider.close();
      await proxy.close();
    }
  });

  it('tells a dead agent token (auth failure, heals when the agent logs in again) from a revoked policy (key gone)', async () => {
    const proxy = await agent();
    const provider = await vault.fixture.open({ address: proxy.url, auth: { method: 'agent' } });
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    try {
      await roundTrip(provider);
      emulator.revokeToken(await readFile(join(vault.fixture.dir, `agent-${roles}.token`), 'utf8'));
      assertUnhealthy(
        await provider.status(ctx()),
        'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        /Vault refuses the token the Vault Agent at unix:\/\/\S+ adds \(expired or revoked\)/,
      );
      await proxy.reauthenticate();
      assert.ok((await provider.status(ctx())).healthy, 'healed without a restart');
      await vault.backend.writePolicy(vault.fixture.policy, []);
      try {
        assertUnhealthy(
          await provider.status(ctx()),
          'TROUSSEAU_ERR_PROVIDER_KEY_GONE',
          /permission denied on/,
        );
      } finally {
        await vault.backend.writePolicy(
          vault.fixture.policy,
          providerPolicy(vault.backend.transitMount, vault.fixture.keyName),
        );
      }
      await roundTrip(provider);
    } finally {
      await provider.close();
      await proxy.close();
    }
  });

  it('says so when the agent forwards no token (use_auto_auth_token unset), and when Vault is down behind it', async () => {
    const bare = await agent({ useAutoAuthToken: false, socketPath: undefined });
    const provider = await vault.fixture.open({ address: bare.url, auth: { method: 'agent' } });
    const proxy = await agent();
    const through = await vault.fixture.open({ address: proxy.url, auth: { method: 'agent' } });
    const emulator = vault.backend.emulator;
    assert.ok(emulator !== undefined);
    try {
      assert.match(bare.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assertUnhealthy(
        await provider.status(ctx()),
        'TROUSSEAU_ERR_PROVIDER_AUTH_FAILED',
        /forwarded the request without a token: .*set use_auto_auth_token/,
      );
      await roundTrip(through);
      emulator.faults.refuseConnections = true;
      try {
        assertUnhealthy(
          await through.status(ctx()),
          'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
          /failed to get the response: .*connection refused/,
        );
      } finally {
        emulator.faults.refuseConnections = false;
      }
      await roundTrip(through);
    } finally {
      await provider.close();
      await through.close();
      await bare.close();
      await proxy.close();
    }
  });

  it('token file sink instead: `auth.method: token` re-reads the token the agent writes after each login', async () => {
    const proxy = await agent();
    const sink = `agent-${roles}.token`;
    const provider = await vault.fixture.open({ auth: { method: 'token', token: { file: sink } } });
    try {
      await roundTrip(provider);
      const first = await readFile(join(vault.fixture.dir, sink), 'utf8');
      // Past the max TTL the agent's token dies and the agent logs in again (its timer, run here).
      vault.clock.advance(121_000);
      await proxy.maintain();
      assert.notEqual(await readFile(join(vault.fixture.dir, sink), 'utf8'), first);
      await roundTrip(provider);
      assert.ok((await provider.status(ctx())).healthy);
    } finally {
      await provider.close();
      await proxy.close();
    }
  });
});
