import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  checkProviderDefinition,
  ConfigError,
  defineProvider,
  ProviderRegistry,
  validateProviderOptions,
} from '../src/index.js';

const valid = defineProvider({
  name: 'fake',
  coreRange: '^1.0.0',
  configSchema: z.strictObject({ address: z.url() }),
  create: () => {
    throw new Error('not used');
  },
});

function loadErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.equal((error as { code?: string }).code, 'TROUSSEAU_ERR_PROVIDER_LOAD');
    return (error as Error).message;
  }
  assert.fail('expected a load error');
}

describe('provider registry', () => {
  it('accepts a default or a named `provider` export, from ESM or CommonJS', () => {
    assert.equal(checkProviderDefinition('fake', { default: valid }), valid);
    assert.equal(checkProviderDefinition('fake', { provider: valid }), valid);
    // CommonJS compiled by tsc, seen from import(): module.exports becomes `default`.
    assert.equal(checkProviderDefinition('fake', { default: { __esModule: true, default: valid } }), valid);
    assert.equal(checkProviderDefinition('fake', { default: { provider: valid } }), valid);
  });

  it('says what is wrong with a package that is not a provider', () => {
    assert.match(
      loadErrorOf(() => checkProviderDefinition('acme', { something: 1 })),
      /provider type "acme": .*does not export a provider definition/,
    );
    assert.match(
      loadErrorOf(() => checkProviderDefinition('acme', { default: { ...valid, create: undefined } })),
      /no "create" function/,
    );
    assert.match(
      loadErrorOf(() => checkProviderDefinition('acme', { default: { ...valid, configSchema: {} } })),
      /no "configSchema"/,
    );
    assert.match(
      loadErrorOf(() => checkProviderDefinition('acme', { default: { ...valid, coreRange: 'banana' } })),
      /no valid "coreRange"/,
    );
    assert.match(
      loadErrorOf(() => checkProviderDefinition('acme', { default: { ...valid, coreRange: '^2.0.0' } })),
      /supports core \^2\.0\.0, but this Trousseau implements core API 1\.0\.0/,
    );
  });

  it('prefers built-in names and names the npm package it could not find', async () => {
    const registry = new ProviderRegistry({ fake: async () => ({ default: valid }) });
    assert.equal(await registry.load('fake', '/'), valid);
    await assert.rejects(registry.load('trousseau-provider-that-does-not-exist', '/tmp'), (error: Error) => {
      assert.match(
        error.message,
        /npm package "trousseau-provider-that-does-not-exist" cannot be found from \/tmp/,
      );
      assert.match(error.message, /npm install trousseau-provider-that-does-not-exist/);
      return true;
    });
  });

  it('reports a built-in package that fails to load, keeping the cause', async () => {
    const cause = new Error('boom');
    const registry = new ProviderRegistry({ broken: () => Promise.reject(cause) });
    await assert.rejects(registry.load('broken', '/'), (error: Error) => {
      assert.match(error.message, /built-in provider package failed to load: boom/);
      assert.equal(error.cause, cause);
      return true;
    });
  });

  it("validates an instance's options with the provider's schema, with the path in the file", async () => {
    assert.deepEqual(
      await validateProviderOptions(valid, { address: 'https://vault:8200' }, 'c.yaml', [
        'providers',
        0,
        'config',
      ]),
      {
        address: 'https://vault:8200',
      },
    );
    await assert.rejects(
      validateProviderOptions(valid, { address: 42, extra: true }, 'c.yaml', ['providers', 2, 'config']),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const paths = error.issues.map((issue) => issue.path);
        assert.ok(paths.includes('providers[2].config.address'), paths.join(','));
        assert.ok(paths.includes('providers[2].config'), paths.join(','));
        assert.match(error.message, /invalid config file c\.yaml/);
        return true;
      },
    );
  });
});
