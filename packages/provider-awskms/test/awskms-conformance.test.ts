import { RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { createTestProviderContext, runProviderConformance } from '@trousseau/testing';
import provider, { awsKmsOptionsSchema } from '../src/index.js';
import { BACKEND_KIND, startBackend } from './backend.js';

// The shared contract. Against the emulator every hook is there: the backend fails by dropping every
// connection, hangs by holding requests, and rotates the key's material on demand (over the wire, as an
// operator would). Against real AWS it fails by disabling the key, and the checks that need a hung
// server are reported as skipped.
runProviderConformance(`awskms (${BACKEND_KIND})`, async () => {
  const backend = await startBackend();
  const key = await backend.createKey();
  const options = awsKmsOptionsSchema.parse({
    region: backend.region,
    endpoint: backend.endpoint,
    statusRefreshSeconds: 0,
    ...(backend.credentials === undefined ? {} : { credentials: backend.credentials }),
    keyId: key.arn,
    encryptionContext: { cluster: 'conformance' },
  });
  const instance = await provider.create(
    options,
    createTestProviderContext({ instanceName: 'aws-test', env: backend.secretEnv }),
  );
  const emulator = backend.emulator;
  return {
    provider: instance,
    async breakBackend() {
      if (emulator !== undefined) emulator.faults.dropConnections = true;
      else await backend.disableKey(key.keyId);
    },
    async restoreBackend() {
      if (emulator !== undefined) emulator.faults.reset();
      else await backend.enableKey(key.keyId);
    },
    async rotateKey() {
      await backend.admin.send(new RotateKeyOnDemandCommand({ KeyId: key.keyId }));
    },
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
    cleanup: () => backend.close(),
  };
});
