import { defineProvider } from '@trousseau/core';
import { LocalKeyProvider, localOptionsSchema } from './local-provider.js';

export {
  createKeyRingFile,
  readKeyRing,
  rotateKeyRingFile,
  type KeyRing,
  type RotateOptions,
} from './key-ring.js';
export { LocalKeyProvider, localOptionsSchema, type LocalOptions } from './local-provider.js';

/** The `local` provider: AES-256-GCM keys in a key-ring file. */
export default defineProvider({
  name: 'local',
  coreRange: '^1.3.0',
  configSchema: localOptionsSchema,
  create: (options, context) => LocalKeyProvider.open(options, context),
});
