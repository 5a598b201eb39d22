import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTrousseauConfig } from './support/trousseau-config.js';

/** A config with one provider of `type`, options `config`. */
function withProvider(type: string, config: Record<string, unknown>): unknown {
  return {
    version: 1,
    socket: { path: '/var/run/trousseau/kms.sock' },
    providers: [{ name: 'main', type, config }],
  };
}

describe('the config check the deployment tests rely on', () => {
  it("loads every provider through the server's list and validates its options with its own schema", async () => {
    const checked = await checkTrousseauConfig(
      withProvider('local', { keyFile: '/etc/trousseau/keys.json' }),
      'good.yaml',
    );
    assert.deepEqual(checked.validatedProviders, ['local']);
    await assert.rejects(
      checkTrousseauConfig(withProvider('local', { keyFile: '/k', colour: 'blue' }), 'bad.yaml'),
      /colour/,
    );
  });

  it('fails on a provider the server does not build in', async () => {
    await assert.rejects(
      checkTrousseauConfig(withProvider('nonexistent', {}), 'unknown.yaml'),
      /unknown\.yaml: provider type "nonexistent" is not built into the server \(.*local.*\)/,
    );
  });

  it('fails on a provider whose package does not load or exports no provider definition', async () => {
    const broken = {
      local: () => Promise.reject(new Error('Cannot find module')),
      empty: () => Promise.resolve({}),
    };
    await assert.rejects(
      checkTrousseauConfig(withProvider('local', { keyFile: '/k' }), 'broken.yaml', broken),
      /broken\.yaml: provider "local" does not load: Cannot find module/,
    );
    await assert.rejects(
      checkTrousseauConfig(withProvider('empty', {}), 'empty.yaml', broken),
      /empty\.yaml: provider "empty" does not load: .*provider definition/,
    );
  });
});
