// HCP Vault Dedicated: the example config (examples/configs/vault-hcp.yaml) and policy
// (vault-hcp-policy.hcl) against an emulator that behaves like a current Vault (400 partial failures,
// key_version, rotate answering 200), with everything in the `admin` namespace.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createSecretReader, loadConfigFile, validateProviderOptions } from '@trousseau/core';
import { RecordingMetrics, testRequestContext } from '@trousseau/testing';
import { createJwtSigner, startVaultEmulator, type VaultCapability } from '@trousseau/testing/vault';
import vaultProvider, { VaultKeyProvider, type VaultOptions } from '../src/index.js';
import { usingRealVault } from './backend.js';
import { CapturingLogger, TestClock } from './helpers.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/configs/', import.meta.url));

/** The `path "..." { capabilities = [...] }` blocks of an HCL policy. */
function parsePolicy(hcl: string): { path: string; capabilities: VaultCapability[] }[] {
  const rules = [...hcl.matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)].map(
    ([, path = '', list = '']) => ({
      path,
      capabilities: [...list.matchAll(/"([a-z]+)"/g)].map(([, capability]) => capability as VaultCapability),
    }),
  );
  assert.ok(rules.length > 0, 'no path blocks in the policy');
  return rules;
}

describe(
  'HCP Vault Dedicated (namespace admin, JWT login)',
  { skip: usingRealVault ? 'needs the emulator' : false },
  () => {
    it('serves the example config with the example policy, inside the admin namespace', async () => {
      const loaded = await loadConfigFile(`${EXAMPLES}vault-hcp.yaml`);
      const entry = loaded.config.providers[0];
      assert.ok(entry !== undefined);
      const example = (await validateProviderOptions(vaultProvider, entry.config, loaded.file, [
        'providers',
        0,
        'config',
      ])) as VaultOptions;
      assert.equal(example.namespace, 'admin');
      assert.equal(example.tls, undefined, 'public TLS: the system roots verify HCP');
      assert.equal(example.auth.method, 'jwt');

      const clock = new TestClock();
      const vault = await startVaultEmulator({
        clock,
        batchPartialFailureStatus: 400,
        returnKeyVersion: true,
        rotateStatus: 200,
        kubernetesLoginFailureStatus: 403,
      });
      const dir = await mkdtemp(join(tmpdir(), 'trousseau-hcp-'));
      const signer = await createJwtSigner();
      const namespace = 'admin';
      const metrics = new RecordingMetrics();
      const logger = new CapturingLogger();
      let provider: VaultKeyProvider | undefined;
      try {
        vault.createKey(example.keyName, { namespace });
        vault.writePolicy(
          'trousseau-kms',
          parsePolicy(await readFile(`${EXAMPLES}vault-hcp-policy.hcl`, 'utf8')),
          {
            namespace,
          },
        );
        vault.configureJwtAuth({
          namespace,
          mount: example.auth.method === 'jwt' ? example.auth.mount : 'jwt',
          jwtValidationPubkeys: [signer.publicKeyPem],
          boundIssuer: 'https://kubernetes.default.svc.cluster.local',
          role: 'trousseau',
          boundAudiences: ['vault'],
          policies: ['trousseau-kms'],
          tokenTtlSeconds: 3600,
        });
        const now = Math.floor(clock.now() / 1000);
        await writeFile(
          join(dir, 'vault-token'),
          signer.sign({
            iss: 'https://kubernetes.default.svc.cluster.local',
            sub: 'system:serviceaccount:kube-system:trousseau',
            aud: ['vault'],
            iat: now,
            exp: now + 3600,
          }),
        );
        // The example as it is, but for the emulator's address and the token file's place.
        const options: VaultOptions = {
          ...example,
          address: vault.url,
          auth: {
            ...example.auth,
            ...(example.auth.method === 'jwt' ? { tokenFile: 'vault-token' } : {}),
          },
        };
        provider = await VaultKeyProvider.open(options, {
          instanceName: 'vault-hcp',
          logger,
          metrics,
          clock,
          configDir: dir,
          secrets: createSecretReader(dir, {}),
        });
        const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(3_000, undefined, clock);
        const status = await provider.status(ctx());
        assert.ok(status.healthy, JSON.stringify(status));
        // A batch with a bad item: the 400 partial failure of current Vault, each caller its own answer.
        const good = await provider.encrypt(randomBytes(32), ctx());
        const results = await Promise.allSettled([
          provider.decrypt({ ciphertext: good.ciphertext, keyRef: '' }, ctx()),
          provider.decrypt(
            { ciphertext: Buffer.from('vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), keyRef: '' },
            ctx(),
          ),
          provider.decrypt({ ciphertext: good.ciphertext, keyRef: '' }, ctx()),
        ]);
        assert.deepEqual(
          results.map((result) => result.status),
          ['fulfilled', 'rejected', 'fulfilled'],
        );
        vault.rotateKey(example.keyName, { namespace });
        const rotated = await provider.status(ctx());
        assert.ok(rotated.healthy && rotated.keyId !== status.keyId, 'the rotation reached the key id');
        const sent = vault.requests.filter((request) => request.path !== '/v1/sys/health');
        assert.ok(sent.length > 4);
        assert.ok(
          sent.every((request) => request.namespace === namespace),
          'every request (the login too) carries X-Vault-Namespace: admin',
        );
        assert.equal(
          metrics.count('vault_logins_total', { provider: 'vault-hcp', method: 'jwt', outcome: 'OK' }),
          1,
        );
      } finally {
        await provider?.close();
        await vault.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
);
