import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

/** This package's directory, so `@trousseau/server` resolves to this package's own exports. */
const PACKAGE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Serves the embedded default (local provider) in a fresh process, with or without the HTTP side
 * listener, and returns the node_modules packages it loaded (from the CommonJS module cache, where
 * prom-client, protobufjs and the vendor SDKs land).
 */
async function packagesLoadedServing(withHealthListener: boolean): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    import { mkdtempSync, rmSync } from 'node:fs';
    import { tmpdir } from 'node:os';
    import { join } from 'node:path';
    const { embeddedDefaultConfig, TrousseauServer } = await import('@trousseau/server');
    const { parseConfig, silentLogger } = await import('@trousseau/core');
    const dir = mkdtempSync(join(tmpdir(), 'trousseau-loads-'));
    let loaded = embeddedDefaultConfig(dir);
    if (${JSON.stringify(withHealthListener)}) {
      loaded = parseConfig({ ...loaded.config, health: { listen: '127.0.0.1:0' } }, loaded.file, loaded.dir);
    }
    const server = await TrousseauServer.create({ loaded, logger: silentLogger });
    await server.listen();
    const packages = new Set();
    for (const file of Object.keys(createRequire(import.meta.url).cache)) {
      const match = /.*[\\\\/]node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)[\\\\/]/.exec(file);
      if (match) packages.add(match[1].replace('\\\\', '/'));
    }
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(JSON.stringify([...packages].sort()));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: PACKAGE_DIR,
  });
  return JSON.parse(stdout) as string[];
}

/** What a start of the embedded default has no use for (issue 12: load only what the config uses). */
const UNUSED_BY_THE_EMBEDDED_DEFAULT = [
  // Metrics are recorded only where /metrics can serve them.
  'prom-client',
  '@opentelemetry/api',
  // The KMS messages are written out; no .proto is parsed.
  '@grpc/proto-loader',
  'protobufjs',
  // Providers the config does not name.
  '@aws-sdk/client-kms',
  '@azure/keyvault-keys',
  '@azure/identity',
  'node-vault',
  // Provider ranges are evaluated only for provider packages from outside this release.
  'semver',
  // The front-end serves gRPC on node:http2; grpc-js is the client of the CLI and of tests only.
  '@grpc/grpc-js',
];

describe('trousseau serve loads what its config uses', () => {
  it('the embedded default without a side listener loads no metrics library, .proto parser or vendor SDK', async () => {
    const loaded = await packagesLoadedServing(false);
    assert.ok(loaded.includes('pino'), `the check sees CommonJS packages; loaded: ${loaded.join(', ')}`);
    assert.deepEqual(
      loaded.filter((name) => UNUSED_BY_THE_EMBEDDED_DEFAULT.includes(name)),
      [],
      `loaded: ${loaded.join(', ')}`,
    );
  });

  it('with health.listen it loads prom-client, which serves /metrics', async () => {
    const loaded = await packagesLoadedServing(true);
    assert.ok(loaded.includes('prom-client'), `loaded: ${loaded.join(', ')}`);
  });
});
