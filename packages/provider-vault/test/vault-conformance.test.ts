import { runProviderConformance } from '@trousseau/testing';
import { providerPolicy, startBackend } from './backend.js';
import { createFixture, tokenAuth } from './helpers.js';

// The shared contract, for each batch partial-failure behaviour of Vault. The backend "fails" by being
// sealed (emulator) or by losing its policy (real Vault, which the suite cannot seal).
for (const batchPartialFailureStatus of [200, 400] as const) {
  runProviderConformance(`vault (partial failure answered ${batchPartialFailureStatus})`, async () => {
    const backend = await startBackend({ batchPartialFailureStatus });
    const fixture = await createFixture(backend);
    const { auth } = await tokenAuth(backend, fixture);
    const provider = await fixture.open({ auth, keyRefreshIntervalSeconds: 1 });
    return {
      provider,
      async breakBackend() {
        if (backend.emulator !== undefined) backend.emulator.seal();
        else await backend.writePolicy(fixture.policy, []);
      },
      async restoreBackend() {
        if (backend.emulator !== undefined) backend.emulator.unseal();
        else await backend.writePolicy(fixture.policy, providerPolicy(backend.transitMount, fixture.keyName));
      },
      async cleanup() {
        await backend.close();
        await fixture.cleanup();
      },
    };
  });
}
