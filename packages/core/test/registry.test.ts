import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import {
  checkProviderDefinition,
  ConfigError,
  CORE_API_VERSION,
  defineProvider,
  ProviderRegistry,
  validateProviderOptions,
  type ProviderLocation,
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
      new RegExp(`supports core \\^2\\.0\\.0, but this Trousseau implements core API ${CORE_API_VERSION}`),
    );
  });

  it('takes a built-in provider, which ships with this core, without evaluating its range, but not without one', () => {
    const builtIn = { builtIn: true } as const;
    assert.equal(checkProviderDefinition('local', { default: valid }, builtIn), valid);
    assert.match(
      loadErrorOf(() =>
        checkProviderDefinition('local', { default: { ...valid, coreRange: undefined } }, builtIn),
      ),
      /no valid "coreRange"/,
    );
    assert.match(
      loadErrorOf(() => checkProviderDefinition('local', { default: { ...valid, coreRange: '' } }, builtIn)),
      /no valid "coreRange"/,
    );
    // A package's '' is semver's "any version", as it has always been.
    const anyRange = { ...valid, coreRange: '' };
    assert.equal(checkProviderDefinition('acme', { default: anyRange }), anyRange);
    // Its range is held to this core by the server's built-in providers test, not at every start.
    const otherRange = { ...valid, coreRange: '^2.0.0' };
    assert.equal(checkProviderDefinition('local', { default: otherRange }, builtIn), otherRange);
  });

  it('prefers built-in names, and with no place to look names the npm package it could not find', async () => {
    const registry = new ProviderRegistry({ fake: async () => ({ default: valid }) });
    assert.equal(await registry.load('fake', '/'), valid);
    await assert.rejects(registry.load('trousseau-provider-that-does-not-exist', '/tmp'), (error: Error) => {
      assert.match(error.message, /npm package "trousseau-provider-that-does-not-exist" cannot be found/);
      assert.match(error.message, /none is configured/);
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

/** Markers of the fixture modules that were evaluated in this process (each fixture pushes its own). */
function loadedMarkers(): readonly string[] {
  return (globalThis as { __trousseauFixtureLoads?: string[] }).__trousseauFixtureLoads ?? [];
}

/** A provider module as a third party writes it, without core: records that it ran, exports a definition. */
function providerModule(name: string, marker: string, prelude = ''): string {
  return `${prelude}
globalThis.__trousseauFixtureLoads = [...(globalThis.__trousseauFixtureLoads ?? []), ${JSON.stringify(marker)}];
export default {
  kind: 'trousseau-provider',
  name: ${JSON.stringify(name)},
  coreRange: '^1.0.0',
  configSchema: { '~standard': { version: 1, vendor: 'fixture', validate: (value) => ({ value }) } },
  create: () => { throw new Error('not used'); },
};
`;
}

async function writeFileIn(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** An installed package `dir/node_modules/<name>` with package.json and the given files. */
async function installPackage(
  dir: string,
  name: string,
  files: Readonly<Record<string, string>>,
  exportsTarget = './index.js',
): Promise<void> {
  const root = join(dir, 'node_modules', name);
  await writeFileIn(
    join(root, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', type: 'module', exports: { '.': exportsTarget } }),
  );
  for (const [file, text] of Object.entries(files)) await writeFileIn(join(root, file), text);
}

function providers(dir: string, origin = 'a test providers directory'): ProviderLocation {
  return { dir, kind: 'providers', origin };
}

function rejectsWithLoadError(promise: Promise<unknown>, check: (error: Error) => void): Promise<void> {
  return assert.rejects(promise, (error: Error) => {
    assert.equal((error as { code?: string }).code, 'TROUSSEAU_ERR_PROVIDER_LOAD', error.message);
    check(error);
    return true;
  });
}

describe('provider registry: where packages and files come from', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'trousseau-registry-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('looks for a package in each providers directory in order, then in the server install', async () => {
    const first = join(root, 'order', 'first');
    const second = join(root, 'order', 'second');
    const install = join(root, 'order', 'install');
    await installPackage(first, 'acme-trousseau', { 'index.js': providerModule('from-first', randomUUID()) });
    await installPackage(second, 'acme-trousseau', {
      'index.js': providerModule('from-second', randomUUID()),
    });
    await installPackage(second, '@acme/only-second', {
      'index.js': providerModule('only-second', randomUUID()),
    });
    await installPackage(install, 'in-install', { 'index.js': providerModule('in-install', randomUUID()) });
    await installPackage(install, 'acme-trousseau', {
      'index.js': providerModule('from-install', randomUUID()),
    });
    const registry = new ProviderRegistry(
      {},
      {
        locations: [
          providers(first),
          providers(second),
          { dir: install, kind: 'install', origin: 'install' },
        ],
      },
    );
    const nameOf = async (type: string): Promise<string> =>
      (await registry.load(type, '/etc/trousseau')).name;
    assert.equal(await nameOf('acme-trousseau'), 'from-first');
    assert.equal(await nameOf('@acme/only-second'), 'only-second');
    assert.equal(await nameOf('in-install'), 'in-install');
  });

  it('lists every place it looked, says which do not exist, and how to install the package', async () => {
    const present = join(root, 'missing', 'providers');
    const absent = join(root, 'missing', 'no-such-dir');
    const install = join(root, 'missing', 'app');
    await mkdir(present, { recursive: true });
    await mkdir(install, { recursive: true });
    const registry = new ProviderRegistry(
      { local: async () => ({ default: valid }) },
      {
        locations: [
          providers(present, 'the default providers directory'),
          providers(absent, '--providers-dir'),
          { dir: install, kind: 'install', origin: "the server's own install" },
        ],
        howToAdd: '--providers-dir <dir>',
      },
    );
    await rejectsWithLoadError(registry.load('@acme/trousseau-hsm', '/etc/trousseau'), (error) => {
      const message = error.message;
      assert.match(message, /^provider type "@acme\/trousseau-hsm": it is not a built-in provider \(local\)/);
      assert.match(message, /npm package "@acme\/trousseau-hsm" cannot be found/);
      assert.ok(message.includes(`${present} (the default providers directory)`), message);
      assert.ok(message.includes(`${absent} (--providers-dir, does not exist)`), message);
      assert.ok(message.includes(`${install} (the server's own install)`), message);
      assert.ok(
        message.includes(`in ${present}: npm install --omit=dev --legacy-peer-deps @acme/trousseau-hsm`),
        message,
      );
      assert.match(message, /--providers-dir <dir>/);
    });
  });

  it('reports a package whose exports name a file it does not ship, keeping the cause', async () => {
    const dir = join(root, 'unbuilt');
    await installPackage(dir, 'unbuilt-provider', {}, './dist/index.js');
    const registry = new ProviderRegistry({}, { locations: [providers(dir)] });
    await rejectsWithLoadError(registry.load('unbuilt-provider', '/'), (error) => {
      assert.match(
        error.message,
        /the package "unbuilt-provider" at .*unbuilt-provider cannot be resolved: /,
      );
      assert.match(error.message, /was it built before it was packed\?/);
      assert.ok(error.cause instanceof Error);
    });
  });

  it('reports a package that throws while loading, with its message and cause', async () => {
    const dir = join(root, 'throws');
    await installPackage(dir, 'throwing-provider', { 'index.js': "throw new Error('kaboom');\n" });
    const registry = new ProviderRegistry({}, { locations: [providers(dir)] });
    await rejectsWithLoadError(registry.load('throwing-provider', '/'), (error) => {
      assert.match(error.message, /the package "throwing-provider" \(.*\) failed to load: kaboom$/);
      assert.equal((error.cause as Error).message, 'kaboom');
    });
  });

  it("says that core comes from the server's install when a provider cannot find it", async () => {
    // A temp directory outside every install of core: the provider's `import '@trousseau/core'` fails.
    const dir = join(root, 'peer', 'providers');
    await installPackage(dir, 'peer-provider', {
      'index.js': providerModule('peer', randomUUID(), "import '@trousseau/core';"),
    });
    const install = join(root, 'peer', 'app');
    const registry = new ProviderRegistry(
      {},
      { locations: [providers(dir), { dir: install, kind: 'install', origin: 'install' }] },
    );
    await rejectsWithLoadError(registry.load('peer-provider', '/'), (error) => {
      assert.match(error.message, /failed to load: Cannot find package '@trousseau\/core'/);
      assert.ok(
        error.message.includes(
          `@trousseau/core is a peer dependency that the server's own install provides: a provider finds it when it is installed in a providers directory inside ${install}`,
        ),
        error.message,
      );
    });
  });

  it('loads a file path only from inside a providers directory, never from the config directory', async () => {
    const configDir = join(root, 'paths', 'etc');
    const providersDir = join(root, 'paths', 'providers');
    const inConfigDir = randomUUID();
    const inProviders = randomUUID();
    await writeFileIn(join(configDir, 'evil.mjs'), providerModule('evil', inConfigDir));
    await writeFileIn(join(providersDir, 'good.mjs'), providerModule('good', inProviders));
    await mkdir(join(providersDir, 'sub'), { recursive: true });
    await symlink(join(configDir, 'evil.mjs'), join(providersDir, 'link.mjs'));
    const registry = new ProviderRegistry(
      {},
      { locations: [providers(providersDir)], howToAdd: '--providers-dir' },
    );

    await rejectsWithLoadError(registry.load('./evil.mjs', configDir), (error) => {
      assert.ok(
        error.message.includes(`${join(configDir, 'evil.mjs')} is outside every providers directory`),
      );
      assert.match(error.message, /never from the config's directory/);
      assert.match(error.message, /add its directory \(--providers-dir\)/);
    });
    await rejectsWithLoadError(registry.load(join(providersDir, 'link.mjs'), configDir), (error) => {
      assert.match(error.message, /link\.mjs leads to .*evil\.mjs, outside every providers directory/);
    });
    assert.ok(!loadedMarkers().includes(inConfigDir), 'the file in the config directory never ran');

    // Inside: absolute, relative to the config file's directory, or a file: URL.
    for (const type of [
      join(providersDir, 'good.mjs'),
      '../providers/good.mjs',
      pathToFileURL(join(providersDir, 'good.mjs')).href,
    ]) {
      assert.equal((await registry.load(type, configDir)).name, 'good', type);
    }
    assert.ok(loadedMarkers().includes(inProviders));

    await rejectsWithLoadError(registry.load('../providers/missing.mjs', configDir), (error) => {
      assert.ok(error.message.includes(`there is no file at ${join(providersDir, 'missing.mjs')}`));
    });
    await rejectsWithLoadError(registry.load('../providers/sub', configDir), (error) => {
      assert.match(error.message, /is not a file: name the provider's entry module/);
    });
  });

  it('refuses a type that is neither a package name nor a file path, without running it', async () => {
    const marker = randomUUID();
    const registry = new ProviderRegistry({}, { locations: [providers(root)] });
    for (const type of [
      `data:text/javascript,globalThis.__trousseauFixtureLoads=[${JSON.stringify(marker)}];export default {}`,
      'node:fs',
      'https://example.com/provider.mjs',
      'acme/../../etc/provider.mjs',
      'Acme Provider',
    ]) {
      await rejectsWithLoadError(registry.load(type, root), (error) => {
        assert.match(
          error.message,
          /an npm package name or a file path .*URLs other than file: and node: modules are refused/,
        );
      });
    }
    assert.ok(!loadedMarkers().includes(marker));
  });
});
