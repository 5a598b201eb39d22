import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Real service recordings the emulators are held to, kept in the repository (packages/testing/fixtures)
 * so a fresh clone can run every test; fixtures-sync.test.ts checks they still equal the project's
 * shared copies (../shared/fixtures) when those are present.
 */
export type FixtureSet = 'vault-1.4.3' | 'azure-keyvault';

/** The directory of a fixture set, from dist/test (compiled) back to the package root. */
export function fixturesDir(set: FixtureSet): string {
  return fileURLToPath(new URL(`../../fixtures/${set}/`, import.meta.url));
}

/** The recordings of a set; throws when there are none, so a replay test can never pass on nothing. */
export function fixtureFiles(set: FixtureSet): string[] {
  const files = readdirSync(fixturesDir(set)).filter((file) => file.endsWith('.json'));
  if (files.length === 0) throw new Error(`no recordings in ${fixturesDir(set)}`);
  return files.sort();
}
