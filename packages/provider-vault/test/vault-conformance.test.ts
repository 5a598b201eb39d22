import { runProviderConformance } from '@trousseau/testing';
import { providerPolicy, startBackend } from './backend.js';
import { createFixture, tokenAuth } from './helpers.js';

// The shared contract, for each batch partial-failure behaviour of Vault, and for two outages. Against
// the emulator every hook is there: the backend fails by being sealed (no retry helps) or by dropping
// every connection (a network outage, which tempts a retry), hangs by holding requests, and rotates the
// transit key. Against a real Vault it fails by losing its policy, and the checks that need a hung server
// are reported as skipped (the suite cannot make a real Vault hang).
for (const [batchPartialFailureStatus, outage] of [
  [200, 'sealed'],
  [400, 'unreachable'],
] as const) {
  const label = `vault (partial failure answered ${batchPartialFailureStatus}, outage: ${outage})`;
  runProviderConformance(label, async () => {
    const backend = await startBackend({ batchPartialFailureStatus });
    const fixture = await createFixture(backend);
    const { auth } = await tokenAuth(backend, fixture);
    // The background key refresh at its longest interval: its requests are not the calls' own, and the
    // kit counts every request after an aborted call (status reads the key at every check anyway).
    const provider = await fixture.open({ auth, keyRefreshIntervalSeconds: 60 });
    const emulator = backend.emulator;
    return {
      provider,
      async breakBackend() {
        if (emulator === undefined) await backend.writePolicy(fixture.policy, []);
        else if (outage === 'sealed') emulator.seal();
        else emulator.faults.dropConnections = true;
      },
      async restoreBackend() {
        if (emulator !== undefined) {
          emulator.faults.holdRequests = false;
          emulator.faults.dropConnections = false;
          emulator.unseal();
        } else
          await backend.writePolicy(fixture.policy, providerPolicy(backend.transitMount, fixture.keyName));
      },
      rotateKey: () => backend.rotateKey(fixture.keyName),
      ...(emulator === undefined
        ? {}
        : {
            async holdBackend() {
              emulator.faults.holdRequests = true;
            },
            async releaseBackend() {
              emulator.faults.holdRequests = false;
            },
            backendRequests: () => emulator.received,
          }),
      async cleanup() {
        await backend.close();
        await fixture.cleanup();
      },
    };
  });
}
