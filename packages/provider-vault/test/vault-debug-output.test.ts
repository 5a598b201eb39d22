import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startBackend, type VaultBackend } from './backend.js';
import { createFixture, type Fixture } from './helpers.js';

const run = promisify(execFile);

describe('vault provider under DEBUG=*', () => {
  let backend: VaultBackend;
  let fixture: Fixture;
  before(async () => {
    backend = await startBackend();
    fixture = await createFixture(backend);
  });
  after(async () => {
    await backend.close();
    await fixture.cleanup();
  });

  it('writes no token, plaintext or secret_id to stderr through node-vault or its transport', async () => {
    const mount = 'approle-debug';
    const { roleId, secretId } = await backend.configureAppRole({
      mount,
      roleName: 'kms',
      policies: [fixture.policy],
      tokenTtlSeconds: 60,
    });
    const token = await backend.createToken({ policies: [fixture.policy] });
    const plaintext = randomBytes(32);
    const child = fileURLToPath(new URL('./debug-child.js', import.meta.url));
    const { stdout, stderr } = await run(process.execPath, [child], {
      timeout: 20_000,
      env: {
        ...process.env,
        DEBUG: '*',
        TROUSSEAU_TEST_VAULT_ADDR: backend.url,
        TROUSSEAU_TEST_VAULT_MOUNT: backend.transitMount,
        TROUSSEAU_TEST_VAULT_KEY: fixture.keyName,
        TROUSSEAU_TEST_VAULT_APPROLE_MOUNT: mount,
        TROUSSEAU_TEST_VAULT_ROLE_ID: roleId,
        TROUSSEAU_TEST_VAULT_SECRET_ID: secretId,
        TROUSSEAU_TEST_VAULT_TOKEN: token,
        TROUSSEAU_TEST_PLAINTEXT_HEX: plaintext.toString('hex'),
      },
    });
    // The child did log in, encrypt and decrypt with both: the secrets were on the wire.
    const keyId = `vault:${backend.transitMount}/${fixture.keyName}:v1:`;
    assert.match(stdout, new RegExp(`^approle: encrypted under ${keyId}`, 'm'));
    assert.match(stdout, new RegExp(`^token: encrypted under ${keyId}`, 'm'));
    assert.ok(!stderr.includes(token), 'the static Vault token reached stderr');
    // The token AppRole issued is unknown here: no request header may reach stderr at all.
    assert.ok(
      !/x-vault-token/i.test(stderr),
      `a Vault token header reached stderr:\n${stderr.slice(0, 2_000)}`,
    );
    assert.ok(
      !stderr.includes(plaintext.toString('base64')),
      `plaintext on stderr:\n${stderr.slice(0, 2_000)}`,
    );
    assert.ok(!stderr.includes(secretId), 'the secret_id reached stderr');
    assert.ok(!stderr.includes(roleId), 'the role_id reached stderr');
  });
});
