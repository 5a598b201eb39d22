import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createKeyRingFile } from '@trousseau/provider-local';
import { removeDir, runCli, scratchDir } from './helpers.js';

describe('trousseau check', () => {
  it('reports every provider with its key id and round trip, and exits 0 when all pass', async () => {
    const dir = await scratchDir();
    try {
      await createKeyRingFile(join(dir, 'a.json'));
      await createKeyRingFile(join(dir, 'b.json'));
      const file = join(dir, 'config.yaml');
      await writeFile(
        file,
        'version: 1\nencryptWith: new\nproviders:\n  - {name: new, type: local, config: {keyFile: a.json}}\n  - {name: old, type: local, config: {keyFile: b.json}}\n',
      );
      const result = await runCli(['check', '--config', file]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /✔ config valid: 2 provider\(s\)/);
      assert.match(
        result.stdout,
        /✔ new \(local, encrypts\): healthy, key id local:key-[^,]+, round trip \d+ ms, \d+-byte ciphertext/,
      );
      assert.match(result.stdout, /✔ old \(local\): healthy/);
      assert.match(result.stdout, /all 2 provider\(s\) OK/);
    } finally {
      await removeDir(dir);
    }
  });

  it('names a provider that cannot start and why, and exits 1', async () => {
    const dir = await scratchDir();
    try {
      await createKeyRingFile(join(dir, 'a.json'));
      const file = join(dir, 'config.yaml');
      await writeFile(
        file,
        'version: 1\nproviders:\n  - {name: main, type: local, config: {keyFile: a.json}}\n',
      );
      const broken = join(dir, 'broken.yaml');
      await writeFile(
        broken,
        'version: 1\nproviders:\n  - {name: main, type: local, config: {keyFile: missing.json}}\n',
      );
      const result = await runCli(['check', '--config', broken]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /provider "main" \(local\) failed to start: .*missing\.json/);
      const good = await runCli(['check', '--config', file]);
      assert.equal(good.code, 0);
    } finally {
      await removeDir(dir);
    }
  });

  it('exits 2 with the path of the bad field for an invalid config', async () => {
    const dir = await scratchDir();
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(file, 'version: 1\nproviders:\n  - {name: main, type: local, config: {keyFile: 1}}\n');
      const result = await runCli(['check', '--config', file]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /providers\[0\]\.config\.keyFile/);
    } finally {
      await removeDir(dir);
    }
  });
});
