import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createKeyRingFile } from '@trousseau/provider-local';
import { removeDir, runCli, scratchDir } from './helpers.js';

// The size budget of replicated encryption as an operator meets it: `trousseau check` names the problem
// and exits 1, `trousseau serve` refuses to start. Eight local providers' copies of a 32-byte data key
// (about 135 bytes each) cannot share KMS v2's 1024 bytes; seven can.

async function config(dir: string, count: number): Promise<string> {
  const names = Array.from({ length: count }, (_, index) => `c${count}-${index}`);
  for (const name of names) await createKeyRingFile(join(dir, `${name}.json`));
  const file = join(dir, `config-${count}.yaml`);
  await writeFile(
    file,
    [
      'version: 1',
      `socket: {path: kms-${count}.sock}`,
      `encryptWith: [${names.join(', ')}]`,
      'providers:',
      ...names.map((name) => `  - {name: ${name}, type: local, config: {keyFile: ${name}.json}}`),
      '',
    ].join('\n'),
  );
  return file;
}

describe('replicated encryption: the KMS v2 size budget at start', () => {
  it('check reports every provider healthy but the list too large, naming each share; serve refuses', async () => {
    const dir = await scratchDir();
    try {
      const file = await config(dir, 8);
      const checked = await runCli(['check', '--config', file]);
      assert.equal(checked.code, 1, checked.stdout + checked.stderr);
      assert.match(checked.stdout, /✔ c8-7 \(local, encrypts\): healthy/);
      assert.match(
        checked.stdout,
        /✘ encryptWith c8-0 \+ .* \+ c8-7: the 8 copies of a 32-byte data key take up to 1\d{3} bytes, over the 1024 bytes KMS v2 stores: c8-0 \d+ \(ciphertext up to 92, key reference up to \d+\)/,
      );
      const served = await runCli(['serve', '--config', file], { timeoutMs: 60_000 });
      assert.equal(served.code, 2, served.stderr);
      assert.match(served.stderr, /the 8 copies of a 32-byte data key take up to/);

      const fits = await runCli(['check', '--config', await config(dir, 7)]);
      assert.equal(fits.code, 0, fits.stdout + fits.stderr);
      assert.doesNotMatch(fits.stdout, /✘/);
    } finally {
      await removeDir(dir);
    }
  });
});
