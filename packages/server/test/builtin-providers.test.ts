import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkProviderDefinition, CORE_API_VERSION } from '@trousseau/core';
import { BUILTIN_PROVIDERS } from '../src/index.js';

describe('built-in providers', () => {
  // The registry does not evaluate a built-in's coreRange at start (it ships with this core); this is
  // where a built-in whose range left this core's version behind is caught.
  it(`each one's coreRange admits this core's API version (${CORE_API_VERSION}), as a package's would be checked`, async () => {
    const names = Object.keys(BUILTIN_PROVIDERS);
    assert.deepEqual(names.sort(), ['awskms', 'azure', 'local', 'vault']);
    for (const name of names) {
      const definition = checkProviderDefinition(name, await BUILTIN_PROVIDERS[name]!());
      assert.equal(definition.name, name);
    }
  });
});
