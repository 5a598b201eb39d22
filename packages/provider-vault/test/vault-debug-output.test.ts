import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { useVaultBackend } from './helpers.js';

const run = promisify(execFile);

describe('vault provider under DEBUG=*', () => {
  const vault = useVaultBackend({ shareClock: false });

  it('writes no token, plaintext or secret_id to stderr through node-vault or its transport', async () => {
    const mount = 'approle-debug';
    const { roleId, secretId } = await vault.backend.configureAppRole({
      mount,
      roleName: 'kms',
      policies: [vault.fixture.policy],
      tokenTtlSeconds: 60,
    });
    const token = await vault.backend.createToken({ policies: [vault.fixture.policy] });
    const plaintext = randomBytes(32);
    const child = fileURLToPath(new URL('./debug-child.js', import.meta.url));
    const { stdout, stderr } = await run(process.execPath, [child], {
      timeout: 60_000, // a bound for a hung child, sized for a loaded CI machine
      env: {
        ...process.env,
        DEBUG: '*',
        TROUSSEAU_TEST_VAULT_ADDR: vault.backend.url,
        TROUSSEAU_TEST_VAULT_MOUNT: vault.backend.transitMount,
        TROUSSEAU_TEST_VAULT_KEY: vault.fixture.keyName,
        TROUSSEAU_TEST_VAULT_APPROLE_MOUNT: mount,
        TROUSSEAU_TEST_VAULT_ROLE_ID: roleId,
        TROUSSEAU_TEST_VAULT_SECRET_ID: secretId,
        TROUSSEAU_TEST_VAULT_TOKEN: token,
        TROUSSEAU_TEST_PLAINTEXT_HEX: plaintext.toString('hex'),
      },
    });
    // The child did log in, encrypt and decrypt with both: the secrets were on the wire.
    const keyId = `vault:${vault.backend.transitMount}/${vault.fixture.keyName}:v1:`;
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
