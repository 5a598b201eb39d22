import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestProviderContext, FileBackend, runProviderConformance } from '@trousseau/testing';
import { createKeyRingFile, LocalKeyProvider, rotateKeyRingFile } from '../src/index.js';

// The shared contract, with every hook. The local provider's backend is its key-ring file: breaking it
// corrupts the file, holding it makes reads of the file hang (a FIFO in its place), rotating adds a key.
// Its keys live in memory, so encrypt and decrypt keep working while the file is broken.
runProviderConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-local-'));
  const keyFile = join(dir, 'keys.json');
  await createKeyRingFile(keyFile);
  const backend = new FileBackend(keyFile);
  const provider = await LocalKeyProvider.open(
    { keyFile: 'keys.json', createIfMissing: false },
    createTestProviderContext({ instanceName: 'local', configDir: dir }),
  );
  let good: string | undefined;
  return {
    provider,
    servesWhileBackendDown: true,
    async breakBackend() {
      good ??= await backend.read();
      await backend.write('{ not json');
    },
    async restoreBackend() {
      if (good !== undefined) await backend.write(good);
      good = undefined;
      await backend.restore();
    },
    async rotateKey() {
      await rotateKeyRingFile(keyFile);
    },
    holdBackend: () => backend.hold(),
    releaseBackend: () => backend.release(),
    backendRequests: () => backend.reads,
    async cleanup() {
      await backend.restore();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
