import 'reflect-metadata';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadConfigFile, ProviderRegistry, validateProviderOptions } from '@trousseau/core';
import { BUILTIN_PROVIDERS } from '../src/index.js';

const EXAMPLES = fileURLToPath(new URL('../../../../examples/configs/', import.meta.url));

describe('example configs', () => {
  it('every file in examples/configs is a valid config whose provider options validate', async () => {
    const files = (await readdir(EXAMPLES)).filter((file) => file.endsWith('.yaml'));
    assert.ok(files.length >= 5, `expected the example configs, found ${files.join(', ')}`);
    const registry = new ProviderRegistry(BUILTIN_PROVIDERS);
    for (const file of files) {
      const loaded = await loadConfigFile(`${EXAMPLES}${file}`);
      for (const [index, entry] of loaded.config.providers.entries()) {
        const definition = await registry.load(entry.type, loaded.dir);
        await validateProviderOptions(definition, entry.config, loaded.file, ['providers', index, 'config']);
      }
    }
  });
});
