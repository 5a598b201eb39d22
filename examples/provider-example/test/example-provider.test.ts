import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecretReader, noopMetrics, silentLogger, systemClock } from '@trousseau/core';
import { runProviderConformance } from '@trousseau/testing';
import example from '../src/index.js';

// A provider author runs the same conformance suite on their provider. The example's "backend" is its
// passphrase file: breaking the backend removes it, restoring writes it back.
runProviderConformance('example (third-party)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-example-'));
  await writeFile(join(dir, 'passphrase'), 'correct horse battery staple');
  const provider = await example.create(
    { passphrase: { file: 'passphrase' } },
    {
      instanceName: 'example',
      logger: silentLogger,
      metrics: noopMetrics,
      clock: systemClock,
      configDir: dir,
      secrets: createSecretReader(dir),
    },
  );
  return {
    provider,
    breakBackend: () => unlink(join(dir, 'passphrase')),
    restoreBackend: () => writeFile(join(dir, 'passphrase'), 'correct horse battery staple'),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
