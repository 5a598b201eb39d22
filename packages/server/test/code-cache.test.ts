// The code cache the shipped command starts with (code-cache.cts, scripts/bundle-server.mjs): used when it
// was made for exactly the bundle's source, and never otherwise, whatever is wrong with it.
//
// Each load runs in a process of its own, as a start does: V8 keeps what it compiled for the life of the
// process and would answer a second load of the same source from there, without looking at the cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CORE_API_VERSION } from '@trousseau/core';
import { BIN, PACKAGE_DIR, scratchDir } from './helpers.js';

const BUNDLE_DIR = dirname(BIN);
const CLI = join(BUNDLE_DIR, 'cli.cjs');
const LOADER = join(BUNDLE_DIR, 'code-cache.cjs');

interface Load {
  /** What became of the cache (code-cache.cts). */
  readonly cache: string;
  readonly runCli: string;
  /** Core's API version as the loaded code has it: a constant V8 keeps in the compiled code. */
  readonly apiVersion: string;
}

/** Loads `file` with the shipped loader in a new node process; what it saw, and what it wrote to stderr. */
async function loadInNewProcess(
  file: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Load & { readonly stderr: string }> {
  const script = `
    const loaded = require(${JSON.stringify(LOADER)}).loadWithCodeCache(${JSON.stringify(file)});
    process.stdout.write(JSON.stringify({
      cache: loaded.cache,
      runCli: typeof loaded.exports.runCli,
      apiVersion: loaded.exports.__trousseauShared['@trousseau/core'].CORE_API_VERSION,
    }));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ ...(JSON.parse(output) as Load), stderr });
      else reject(new Error(`loading ${file} exited ${String(code)}: ${output}${stderr}`));
    });
  });
}

describe('the code cache', () => {
  let root: string;
  /** Where the copies go: as deep below a package.json as the bundle is, since it reads its version there. */
  let dir: string;
  before(async () => {
    root = await scratchDir('trousseau-code-cache-');
    dir = join(root, 'dist', 'bundle');
    await mkdir(dir, { recursive: true });
    await copyFile(join(PACKAGE_DIR, 'package.json'), join(root, 'package.json'));
    // What cli.cjs requires as it loads.
    await copyFile(join(BUNDLE_DIR, 'native-import.cjs'), join(dir, 'native-import.cjs'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A copy of the shipped cli.cjs (its source changed by `edit`) with the cache given. */
  async function copyOfCli(
    name: string,
    cache: 'shipped' | 'none' | Buffer,
    edit: (source: string) => string = (source) => source,
  ): Promise<string> {
    const file = join(dir, `${name}.cjs`);
    await writeFile(file, edit(await readFile(CLI, 'utf8')));
    if (cache === 'shipped') await copyFile(`${CLI}.v8cache`, `${file}.v8cache`);
    else if (cache !== 'none') await writeFile(`${file}.v8cache`, cache);
    return file;
  }

  test('the shipped bundle starts with the cache its build wrote', async () => {
    assert.deepEqual(await loadInNewProcess(CLI), {
      cache: 'accepted',
      runCli: 'function',
      apiVersion: CORE_API_VERSION,
      stderr: '',
    });
  });

  test('the same source and cache elsewhere: used', async () => {
    const loaded = await loadInNewProcess(await copyOfCli('same', 'shipped'));
    assert.equal(loaded.cache, 'accepted');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('source changed after the cache was made (same length): not used, the new source runs', async () => {
    // V8 compares only the source's length with what the cache was made from; the code would run the old
    // constant if the cache were given to it.
    const changed = CORE_API_VERSION.replace(/^\d/, (digit) => String((Number(digit) + 1) % 10));
    const file = await copyOfCli('changed', 'shipped', (source) => {
      const from = `CORE_API_VERSION=${JSON.stringify(CORE_API_VERSION)}`;
      assert.ok(source.includes(from), `the bundle holds ${from}`);
      return source.replace(from, `CORE_API_VERSION=${JSON.stringify(changed)}`);
    });
    const loaded = await loadInNewProcess(file);
    assert.equal(loaded.cache, 'stale');
    assert.equal(loaded.apiVersion, changed);
  });

  test('a cache V8 refuses (another Node, or damaged): compiled without it', async () => {
    const shipped = await readFile(`${CLI}.v8cache`);
    const damaged = Buffer.concat([shipped.subarray(0, 32), Buffer.alloc(shipped.length - 32, 0x5a)]);
    const loaded = await loadInNewProcess(await copyOfCli('damaged', damaged));
    assert.equal(loaded.cache, 'rejected');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('a cache file too short to hold the digest: not used', async () => {
    const loaded = await loadInNewProcess(await copyOfCli('short', Buffer.from('abc')));
    assert.equal(loaded.cache, 'stale');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('no cache file: compiled without one', async () => {
    const loaded = await loadInNewProcess(await copyOfCli('none', 'none'));
    assert.equal(loaded.cache, 'absent');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('TROUSSEAU_WRITE_CODE_CACHE=1 writes the cache of what the process loaded when it exits', async () => {
    const file = await copyOfCli('written', 'none');
    assert.equal((await loadInNewProcess(file, { TROUSSEAU_WRITE_CODE_CACHE: '1' })).cache, 'absent');
    const loaded = await loadInNewProcess(file);
    assert.equal(loaded.cache, 'accepted');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('a cache that cannot be written: said on stderr, and the process ends as it would have', async () => {
    const file = await copyOfCli('unwritable', 'none');
    // A directory where the cache file would go: nothing can be renamed onto it, whoever runs the test.
    await mkdir(join(`${file}.v8cache`, 'occupied'), { recursive: true });
    const loaded = await loadInNewProcess(file, { TROUSSEAU_WRITE_CODE_CACHE: '1' });
    assert.equal(loaded.cache, 'absent');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
    assert.match(loaded.stderr, /the code cache was not written to .*unwritable\.cjs\.v8cache/);
    assert.deepEqual(
      (await readdir(dir)).filter((name) => name.endsWith('.tmp')),
      [],
      'no half-written file left',
    );
  });
});
