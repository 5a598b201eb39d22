import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

/** The package directory, so `@trousseau/core` resolves to this package's own exports. */
const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Imports `specifier` in a fresh Node process and returns the packages it loaded from node_modules
 * (from the CommonJS module cache, where @grpc/grpc-js, tsyringe and protobufjs would land).
 */
async function packagesLoadedBy(specifier: string): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(specifier)});
    const loaded = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      // The last node_modules of the path: pnpm keeps packages under node_modules/.pnpm/<id>/node_modules.
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

describe('entry points', () => {
  it('@trousseau/core, what a provider package imports, loads neither gRPC nor the DI container', async () => {
    const loaded = await packagesLoadedBy('@trousseau/core');
    assert.deepEqual(
      loaded.filter((name) => name.startsWith('@grpc/') || name === 'tsyringe'),
      [],
      `loaded: ${loaded.join(', ')}`,
    );
  });

  it('@trousseau/core/grpc loads grpc-js (the check above would see it), and no .proto parser', async () => {
    const loaded = await packagesLoadedBy('@trousseau/core/grpc');
    assert.ok(loaded.includes('@grpc/grpc-js'), `loaded: ${loaded.join(', ')}`);
    // The KMS messages are written out in kms-codecs.ts: parsing the .proto files cost a fifth of start-up.
    assert.deepEqual(
      loaded.filter((name) => name === '@grpc/proto-loader' || name === 'protobufjs'),
      [],
      `loaded: ${loaded.join(', ')}`,
    );
  });
});
