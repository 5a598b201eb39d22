import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

/** This package's directory: it depends on every built-in provider. */
const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** The node_modules packages a fresh process has loaded after importing `specifier`. */
async function packagesLoadedBy(specifier: string): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(specifier)});
    const loaded = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      const match = /.*[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(file);
      if (match) loaded.add(match[1].replace('\\\\', '/'));
    }
    process.stdout.write(JSON.stringify([...loaded].sort()));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: PACKAGE_DIR,
  });
  return JSON.parse(stdout) as string[];
}

describe('provider packages stand apart from the transport', () => {
  for (const name of ['local', 'vault', 'awskms', 'azure']) {
    it(`@trousseau/provider-${name} loads without gRPC`, async () => {
      const loaded = await packagesLoadedBy(`@trousseau/provider-${name}`);
      assert.deepEqual(
        loaded.filter((pkg) => pkg.startsWith('@grpc/')),
        [],
        `loaded: ${loaded.join(', ')}`,
      );
    });
  }

  it('the front-end the server serves the socket with does load it (so the checks above can see it)', async () => {
    const loaded = await packagesLoadedBy('@trousseau/core/grpc');
    assert.ok(loaded.includes('@grpc/grpc-js'), `loaded: ${loaded.join(', ')}`);
  });
});
