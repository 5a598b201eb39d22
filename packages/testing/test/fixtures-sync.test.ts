import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fixtureFiles, fixturesDir, type FixtureSet } from './fixtures.js';

// packages/testing/dist/test -> the repository root, whose sibling is the project's shared/ folder.
const SHARED = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));

describe('recorded fixtures', () => {
  for (const set of ['vault-1.4.3', 'azure-keyvault'] as const satisfies readonly FixtureSet[]) {
    it(`${set}: the repository copy holds recordings and equals ../shared/fixtures when present`, (t) => {
      const files = fixtureFiles(set);
      assert.ok(files.length >= 6, `expected the recordings of ${set}, found ${files.length}`);
      const shared = join(SHARED, set);
      if (!existsSync(shared)) {
        t.diagnostic(`${shared} is not here (a clone without the project's shared folder): compared nothing`);
        return;
      }
      assert.deepEqual(
        readdirSync(shared).sort(),
        readdirSync(fixturesDir(set)).sort(),
        'the same files in both copies',
      );
      for (const file of readdirSync(shared)) {
        assert.ok(
          readFileSync(join(shared, file)).equals(readFileSync(join(fixturesDir(set), file))),
          `${set}/${file} differs from the shared copy: copy it again`,
        );
      }
    });
  }
});
