import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testRequestContext } from '@trousseau/testing';
import { roundTrip, tokenAuth, useVaultBackend } from './helpers.js';

/** An hour: far more than any deadline, so a deadline read on the wrong clock has always passed. */
const HOUR_MS = 3_600_000;

describe('vault provider: one clock', () => {
  const vault = useVaultBackend();

  it('reads request deadlines on the injected clock, the one token lifetimes are on', async () => {
    // The injected clock runs an hour behind the system's: a deadline compared with Date.now() would
    // be an hour past, and every call would fail DEADLINE_EXCEEDED.
    vault.clock.advance(-HOUR_MS);
    try {
      const { auth } = await tokenAuth(vault.backend, vault.fixture, { ttlSeconds: 600 });
      const provider = await vault.fixture.open({ auth });
      try {
        const status = await provider.status(testRequestContext(3_000, undefined, vault.clock));
        assert.ok(status.healthy, JSON.stringify(status));
        await roundTrip(provider);
      } finally {
        await provider.close();
      }
    } finally {
      vault.clock.advance(HOUR_MS);
    }
  });
});
