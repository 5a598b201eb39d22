import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { fixtureFiles, fixturesDir, type FixtureSet } from './fixtures.js';

// packages/testing/dist/test -> the repository root, whose sibling is the project's shared/ folder.
const SHARED = fileURLToPath(new URL('../../../../../shared/fixtures/', import.meta.url));

// Without the shared folder the comparison runs nothing: it shows as skipped, never as passed
// (scripts/allowed-skips.json allows this skip, with the same words).
const NO_SHARED =
  "../shared/fixtures is not beside the repository (a clone without the project's shared folder): nothing to compare the repository's copy with";

describe('recorded fixtures', () => {
  for (const set of ['vault-1.4.3', 'azure-keyvault'] as const satisfies readonly FixtureSet[]) {
    const shared = join(SHARED, set);

    it(`${set}: the repository holds the recordings`, () => {
      const files = fixtureFiles(set);
      assert.ok(files.length >= 6, `expected the recordings of ${set}, found ${files.length}`);
    });

    it(
      `${set}: the repository copy equals ../shared/fixtures`,
      { skip: existsSync(shared) ? false : NO_SHARED },
      () => {
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
      },
    );
  }
});
