import { runProviderConformance } from '@trousseau/testing';
import { startAzureFixture } from './helpers.js';

// The shared contract, with every hook: the real SDK over TLS against the emulator. The backend fails by
// dropping every connection (Key Vault and Entra ID), hangs by holding requests, and rotates the key to a
// new version.
runProviderConformance('azure (real SDK, emulator over TLS)', async () => {
  const fixture = await startAzureFixture();
  const emulator = fixture.emulator;
  return {
    provider: fixture.provider({ keyRefreshIntervalSeconds: 0 }),
    async breakBackend() {
      emulator.faults.dropConnections = true;
    },
    async restoreBackend() {
      emulator.faults.reset();
    },
    async rotateKey() {
      await emulator.rotateKey(fixture.keyName);
    },
    async holdBackend() {
      emulator.faults.holdRequests = true;
    },
    async releaseBackend() {
      emulator.faults.holdRequests = false;
    },
    backendRequests: () => emulator.received,
    cleanup: () => fixture.cleanup(),
  };
});
