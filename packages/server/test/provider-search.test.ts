import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROVIDERS_PATH_ENV, providerSearchPath, SERVER_INSTALL_DIR } from '../src/provider-search.js';

const dirsOf = (search: ReturnType<typeof providerSearchPath>): string[] =>
  search.locations.map((location) => `${location.kind}:${location.dir}`);

describe('where the server looks for provider packages', () => {
  it("is <install>/providers by default, then the server's own install", () => {
    const search = providerSearchPath({ env: {}, installDir: '/app', cwd: '/work' });
    assert.deepEqual(dirsOf(search), ['providers:/app/providers', 'install:/app']);
    assert.match(search.howToAdd ?? '', /--providers-dir <dir> or TROUSSEAU_PROVIDERS_PATH/);
  });

  it(`takes ${PROVIDERS_PATH_ENV} instead of the default, in order, relative entries from the working directory`, () => {
    const search = providerSearchPath({
      env: { [PROVIDERS_PATH_ENV]: '/opt/acme::vendor/providers' },
      installDir: '/app',
      cwd: '/work',
    });
    assert.deepEqual(dirsOf(search), [
      'providers:/opt/acme',
      'providers:/work/vendor/providers',
      'install:/app',
    ]);
  });

  it(`takes --providers-dir flags instead of ${PROVIDERS_PATH_ENV} and the default`, () => {
    const search = providerSearchPath({
      flags: ['dev', '/opt/acme'],
      env: { [PROVIDERS_PATH_ENV]: '/ignored' },
      installDir: '/app',
      cwd: '/work',
    });
    assert.deepEqual(dirsOf(search), ['providers:/work/dev', 'providers:/opt/acme', 'install:/app']);
    assert.deepEqual(
      search.locations.map((location) => location.origin),
      ['--providers-dir', '--providers-dir', "the server's own install"],
    );
  });

  it('knows its own install: the package directory holding the CLI (/app in the image)', () => {
    const manifest = JSON.parse(readFileSync(join(SERVER_INSTALL_DIR, 'package.json'), 'utf8')) as {
      name: string;
      bin: Record<string, string>;
    };
    assert.equal(manifest.name, '@trousseau/server');
    assert.ok(existsSync(join(SERVER_INSTALL_DIR, manifest.bin['trousseau'] ?? 'missing')));
  });
});
