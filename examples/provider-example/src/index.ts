// A minimal third-party Trousseau provider, written the way an outside author would: it depends on
// @trousseau/core as a peer, validates its options with zod, and exports its definition as default.
// It encrypts with AES-256-GCM under keys derived (scrypt) from a passphrase file, one key version per
// line: fine for learning the contract, not a substitute for a real KMS.
import { defineProvider, secretRefSchema } from '@trousseau/core';
import { z } from 'zod';
import { ExampleProvider, readFileKeys } from './example-provider.js';
import { PassphraseKeys } from './passphrase-keys.js';

const optionsSchema = z.strictObject({
  /**
   * The passphrase file (`{ file: path }`, re-read at every health check) or variable (`{ env: NAME }`):
   * one passphrase per line, oldest first. The last line encrypts; every line decrypts. Rotate by
   * appending a line; never remove one while data made with it may exist.
   */
  passphrase: secretRefSchema,
});

export default defineProvider({
  name: 'example',
  coreRange: '^1.0.0',
  configSchema: optionsSchema,
  async create(options, context) {
    const derive = new PassphraseKeys();
    // Derive every key once, here, asynchronously: calls then only look keys up.
    const keys = await readFileKeys(context.secrets, options.passphrase, derive);
    return new ExampleProvider(keys, context.secrets, options.passphrase, derive);
  },
});
