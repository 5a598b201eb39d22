import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type * as ConfigModule from '../src/config.js';
import { ConfigError, encryptingProvider, loadConfigFile, parseConfig } from '../src/index.js';

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return [...error.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it("parses without compiling a parser (zod's jitless parse): a config is parsed a few times per process", async () => {
    // A copy of the module whose schema no test has parsed yet: zod compiles a parser at the first parse.
    const fresh = (await import(`../src/config.js?fresh=${randomUUID()}`)) as typeof ConfigModule;
    const original = globalThis.Function;
    let compiled = 0;
    globalThis.Function = new Proxy(original, {
      construct(target, args: unknown[]) {
        compiled += 1;
        return Reflect.construct(target, args) as object;
      },
    });
    try {
      const { config } = fresh.parseConfig(
        { version: 1, providers: [{ name: 'a', type: 'local' }] },
        'x.yaml',
        '/etc/trousseau',
      );
      assert.equal(config.providers[0]?.name, 'a');
    } finally {
      globalThis.Function = original;
    }
    assert.equal(compiled, 0, 'functions compiled while parsing');
  });

  it('fills defaults: socket mode 0600, status version v2, the single provider encrypts', () => {
    const { config } = parseConfig(
      { version: 1, providers: [{ name: 'a', type: 'local' }] },
      'x.yaml',
      '/etc/trousseau',
    );
    assert.equal(config.socket.mode, '0600');
    assert.equal(config.socket.path, '/var/run/trousseau/kms.sock');
    assert.equal(config.kms.statusVersion, 'v2');
    assert.equal(encryptingProvider(config).name, 'a');
    assert.deepEqual(config.providers[0]?.config, {});
  });

  it('resolves a relative socket path against the config directory', () => {
    const { config } = parseConfig(
      { version: 1, socket: { path: 'run/kms.sock' }, providers: [{ name: 'a', type: 'local' }] },
      '/etc/trousseau/config.yaml',
      '/etc/trousseau',
    );
    assert.equal(config.socket.path, '/etc/trousseau/run/kms.sock');
  });

  it('names the path of every bad field', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          version: 1,
          socket: { path: '/x', mode: 'rw' },
          providers: [
            { name: 'Bad Name', type: 'local' },
            { name: 'b', type: '', config: [] },
          ],
          kms: { statusVersion: 'v3' },
        },
        'x.yaml',
        '/',
      ),
    );
    const paths = issues.map((issue) => issue.path);
    for (const expected of [
      'socket.mode',
      'providers[0].name',
      'providers[1].type',
      'providers[1].config',
      'kms.statusVersion',
    ]) {
      assert.ok(paths.includes(expected), `missing ${expected} in ${paths.join(', ')}`);
    }
  });

  it('requires encryptWith with several providers and rejects duplicate names', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          version: 1,
          providers: [
            { name: 'a', type: 'local' },
            { name: 'a', type: 'vault' },
          ],
        },
        'x.yaml',
        '/',
      ),
    );
    assert.deepEqual(
      issues.map((issue) => issue.path),
      ['providers[1].name', 'encryptWith'],
    );
  });

  it('takes a list in encryptWith (replicated encryption) with an optional minCopies, checked by path', () => {
    const providers = [
      { name: 'a', type: 'local' },
      { name: 'b', type: 'vault' },
    ];
    const { config } = parseConfig(
      { version: 1, encryptWith: ['b', 'a'], minCopies: 1, providers },
      'x.yaml',
      '/',
    );
    assert.deepEqual(config.encryptWith, ['b', 'a']);
    assert.equal(config.minCopies, 1);
    assert.equal(encryptingProvider(config).name, 'b');
    const issues = issuesOf(() =>
      parseConfig({ version: 1, encryptWith: ['a', 'c', 'a'], minCopies: 4, providers }, 'x.yaml', '/'),
    );
    assert.deepEqual(
      issues.map((issue) => [issue.path, issue.message]),
      [
        ['encryptWith[1]', 'names "c", which is not in providers (a, b)'],
        ['encryptWith[2]', 'lists "a" twice'],
        ['minCopies', 'is 4, but encryptWith lists 3 provider(s)'],
      ],
    );
    assert.deepEqual(
      issuesOf(() => parseConfig({ version: 1, encryptWith: [], providers }, 'x.yaml', '/')).map(
        (issue) => issue.path,
      ),
      ['encryptWith'],
    );
  });

  it('loads YAML from a file and reports syntax errors with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trousseau-config-'));
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(
        file,
        'version: 1\nencryptWith: b\nproviders:\n  - name: a\n    type: local\n  - name: b\n    type: local\n',
      );
      const loaded = await loadConfigFile(file);
      assert.equal(loaded.dir, dir);
      assert.equal(encryptingProvider(loaded.config).name, 'b');
      await writeFile(file, 'version: 1\nversion: 2\n');
      await assert.rejects(
        loadConfigFile(file),
        (error: Error) => error.message.includes(file) && /YAML syntax/.test(error.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
