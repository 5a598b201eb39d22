// The code cache the shipped command starts with (code-cache.cts, scripts/bundle-server.mjs): used when it
// was made for exactly the bundle's source, and never otherwise, whatever is wrong with it.
//
// Each load runs in a process of its own, as a start does: V8 keeps what it compiled for the life of the
// process and would answer a second load of the same source from there, without looking at the cache.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CORE_API_VERSION } from '@trousseau/core';
import { BIN, PACKAGE_DIR, scratchDir } from './helpers.js';

const BUNDLE_DIR = dirname(BIN);
const CLI = join(BUNDLE_DIR, 'cli.cjs');
const LOADER = join(BUNDLE_DIR, 'code-cache.cjs');
/** The cache file's layout (code-cache.cts): three SHA-256 digests, then V8's data. */
const DIGEST_BYTES = 32;
const HEADER_BYTES = 3 * DIGEST_BYTES;

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

  /** The shipped cache with its data (what follows the three digests of code-cache.cts) changed by `change`. */
  async function shippedWithData(change: (data: Buffer) => Buffer, nodeDigest?: Buffer): Promise<Buffer> {
    const shipped = await readFile(`${CLI}.v8cache`);
    const data = change(Buffer.from(shipped.subarray(HEADER_BYTES)));
    return Buffer.concat([
      shipped.subarray(0, DIGEST_BYTES),
      nodeDigest ?? shipped.subarray(DIGEST_BYTES, 2 * DIGEST_BYTES),
      createHash('sha256').update(data).digest(),
      data,
    ]);
  }

  test('damaged data: never given to V8 (which would abort the process), compiled without it', async () => {
    const shipped = await readFile(`${CLI}.v8cache`);
    const damaged = Buffer.from(shipped);
    // Past V8's own header, where V8 checks nothing: given to it, such bytes abort the process.
    for (let at = HEADER_BYTES + 200; at < damaged.length; at += 997) damaged[at] = (damaged[at] ?? 0) ^ 0xff;
    const loaded = await loadInNewProcess(await copyOfCli('damaged', damaged));
    assert.equal(loaded.cache, 'rejected');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('made by another Node: not used (V8 would take it: Node 20 releases share a V8 version number)', async () => {
    const other = createHash('sha256').update(`v20.0.0 ${process.arch} ${process.versions.v8}`).digest();
    const loaded = await loadInNewProcess(
      await copyOfCli('other-node', await shippedWithData((d) => d, other)),
    );
    assert.equal(loaded.cache, 'rejected');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('data V8 itself refuses, whole and undamaged by our digests: compiled without it', async () => {
    const cache = await shippedWithData((data) => Buffer.alloc(data.length, 0x5a));
    const loaded = await loadInNewProcess(await copyOfCli('refused', cache));
    assert.equal(loaded.cache, 'rejected');
    assert.equal(loaded.apiVersion, CORE_API_VERSION);
  });

  test('a cache file too short to hold its digests: not used', async () => {
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
