import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { testRequestContext } from '@trousseau/testing';
import { startBackend, usingRealVault } from './backend.js';
import { createFixture } from './helpers.js';

const ctx = (): ReturnType<typeof testRequestContext> => testRequestContext(3_000);

describe(
  'vault namespaces (Enterprise)',
  { skip: usingRealVault ? 'needs the emulator (namespaces)' : false },
  () => {
    it('sends X-Vault-Namespace on every request, logs in inside the namespace, and tells key ids apart', async () => {
      const backend = await startBackend();
      const fixture = await createFixture(backend);
      const emulator = backend.emulator;
      assert.ok(emulator !== undefined);
      const namespace = 'platform/kms';
      try {
        emulator.createKey(fixture.keyName, { namespace });
        emulator.writePolicy(
          'kms-ns',
          [
            { path: `transit/encrypt/${fixture.keyName}`, capabilities: ['update'] },
            { path: `transit/decrypt/${fixture.keyName}`, capabilities: ['update'] },
            { path: `transit/keys/${fixture.keyName}`, capabilities: ['read'] },
          ],
          { namespace },
        );
        emulator.configureAppRole({
          namespace,
          roleName: 'kms',
          roleId: 'role-in-namespace',
          secretId: 'secret-in-namespace',
          policies: ['kms-ns'],
          tokenTtlSeconds: 600,
        });
        const provider = await fixture.open({
          namespace,
          auth: {
            method: 'approle',
            roleId: { file: await fixture.writeFile('role-id', 'role-in-namespace') },
            secretId: { file: await fixture.writeFile('secret-id', 'secret-in-namespace') },
          },
        });
        const outside = await fixture.open({
          auth: { method: 'token', token: { file: await fixture.writeFile('root', emulator.rootToken) } },
        });
        try {
          emulator.clearRequests();
          const plaintext = randomBytes(32);
          const sealed = await provider.encrypt(plaintext, ctx());
          assert.deepEqual(
            Buffer.from(await provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: '' }, ctx())),
            plaintext,
          );
          const status = await provider.status(ctx());
          assert.ok(status.healthy, JSON.stringify(status));
          const sent = emulator.requests.filter((request) => request.path !== '/v1/sys/health');
          assert.ok(
            sent.length > 0 && sent.every((request) => request.namespace === namespace),
            JSON.stringify(sent),
          );
          // Same mount, key name and version outside the namespace: another key, another key id.
          const other = await outside.status(ctx());
          assert.ok(other.healthy);
          assert.notEqual(other.keyId, status.keyId);
        } finally {
          await provider.close();
          await outside.close();
        }
      } finally {
        await backend.close();
        await fixture.cleanup();
      }
    });
  },
);
