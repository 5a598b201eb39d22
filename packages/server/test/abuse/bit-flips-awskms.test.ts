import { describe, it } from 'node:test';
import { assertEveryBitFlipRefused } from './bit-flips.js';

describe('abuse: every single-bit change of a real stored ciphertext is refused', () => {
  it('awskms: on v2 with the right key_id, v2 with an empty key_id, and v1beta1', { timeout: 300_000 }, (t) =>
    assertEveryBitFlipRefused('awskms', t),
  );
});
