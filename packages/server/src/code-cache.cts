// Loads the bundled CLI (dist/bundle/cli.cjs) with the V8 code cache that `pnpm build` writes beside it
// (cli.cjs.v8cache), so a start does not parse and compile the ~1 MB it runs: V8 takes the compiled
// functions from the cache instead (issue 12: start to socket ready, docs/benchmarks.md "The code cache").
//
// The cache file is three SHA-256 digests, then V8's cached data: of the code compiled (the bundle's
// source in its wrapper), of the Node that wrote it (its version, architecture and V8 version), and of the
// data itself. V8 checks little of its own: the source's length (it would run the old code of an edited
// bundle of the same length), its own version number (the same in every Node 20 release), its flags, and
// no checksum of the data (one damaged byte aborts the process). So the cache is given to V8 only when all
// three digests match. Whatever the reason it cannot be used (absent, made for other source, made by
// another Node, damaged, refused by V8), the file is compiled as without it: a start is slower, never wrong.
//
// Code compiled here cannot run `import()`: Node 20 gives a `vm.Script` a module loader only through an
// experimental option, and a script taken from the cache loses it. So the bundle holds no `import()`: the
// bundler makes each into a `require`, and the import of a third-party provider goes through a file Node
// loads itself (native-import.cjs, scripts/bundle-server.mjs).
//
// CommonJS, like bin.cts, which calls it.
import crypto = require('node:crypto');
import fs = require('node:fs');
import Module = require('node:module');
import path = require('node:path');
import vm = require('node:vm');

/** What became of the cache: used, or why not. */
type CodeCacheUse =
  /** V8 took the cache. */
  | 'accepted'
  /** Made by another Node, damaged, or refused by V8 (made with other V8 flags). */
  | 'rejected'
  /** Made for other source: the bundle was changed after the cache was written. */
  | 'stale'
  /** No cache file (or none readable). */
  | 'absent';

interface LoadedWithCodeCache {
  readonly exports: unknown;
  readonly cache: CodeCacheUse;
}

const DIGEST_BYTES = 32;
/** The source's digest, the Node's, the data's. */
const HEADER_BYTES = 3 * DIGEST_BYTES;

/** The environment variable that makes a process write the cache of what it loaded when it exits. */
const WRITE_VARIABLE = 'TROUSSEAU_WRITE_CODE_CACHE';

/** Node's CommonJS wrapper, so the code runs exactly as `require` would run it. */
type ModuleWrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: NodeJS.Module,
  filename: string,
  dirname: string,
) => void;

function cacheFileOf(file: string): string {
  return `${file}.v8cache`;
}

function sha256(data: string | Buffer): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

/** The Node a cache was made by, as far as what V8 compiles can differ. */
function nodeDigest(): Buffer {
  return sha256(`${process.version} ${process.arch} ${process.versions.v8}`);
}

function readCache(file: string, sourceDigest: Buffer): { data?: Buffer; use: CodeCacheUse } {
  let stored: Buffer;
  try {
    stored = fs.readFileSync(cacheFileOf(file));
  } catch {
    return { use: 'absent' };
  }
  if (stored.length <= HEADER_BYTES || !stored.subarray(0, DIGEST_BYTES).equals(sourceDigest)) {
    return { use: 'stale' };
  }
  const data = stored.subarray(HEADER_BYTES);
  if (
    !stored.subarray(DIGEST_BYTES, 2 * DIGEST_BYTES).equals(nodeDigest()) ||
    !stored.subarray(2 * DIGEST_BYTES, HEADER_BYTES).equals(sha256(data))
  ) {
    return { use: 'rejected' };
  }
  return { data, use: 'accepted' };
}

/**
 * `require(file)`, with the code cache beside it when there is a usable one. The module is entered in
 * `require.cache` under its path, as `require` would enter it, so the bundle's lazily loaded parts reach
 * it with `require`. With `TROUSSEAU_WRITE_CODE_CACHE=1` in the environment, the cache is (re)written
 * when the process exits, holding every function compiled by then (the build runs a start that way).
 */
function loadWithCodeCache(file: string): LoadedWithCodeCache {
  // Read as text and hashed as such: no megabyte-sized buffer is left for the collector after the start.
  const code = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'utf8')}\n})`;
  const sourceDigest = sha256(code);
  const cached = readCache(file, sourceDigest);
  const script = new vm.Script(code, { filename: file, cachedData: cached.data });
  const use = script.cachedDataRejected === true ? 'rejected' : cached.use;
  if (process.env[WRITE_VARIABLE] === '1') {
    process.once('exit', () => {
      // Written beside and renamed into place: a start never reads half a cache. A cache that cannot be
      // written is said so, and changes nothing else about how the process ends.
      const written = `${cacheFileOf(file)}.${process.pid}.tmp`;
      try {
        const data = script.createCachedData();
        fs.writeFileSync(written, Buffer.concat([sourceDigest, nodeDigest(), sha256(data), data]));
        fs.renameSync(written, cacheFileOf(file));
      } catch (error) {
        fs.rmSync(written, { force: true });
        process.stderr.write(
          `trousseau: the code cache was not written to ${cacheFileOf(file)}: ${error instanceof Error ? error.message : String(error)}\n`,
        );
      }
    });
  }
  const requireFromFile = Module.createRequire(file);
  const loaded = new Module(file, module);
  loaded.filename = file;
  // Where `module.require` looks for packages: the node_modules directories above the file, as Node sets.
  loaded.paths = requireFromFile.resolve.paths('a-package') ?? [];
  require.cache[file] = loaded;
  try {
    const wrapper = script.runInThisContext() as ModuleWrapper;
    wrapper.call(loaded.exports, loaded.exports, requireFromFile, loaded, file, path.dirname(file));
  } catch (error) {
    // As `require` does: a module that failed to load is not kept.
    delete require.cache[file];
    throw error;
  }
  loaded.loaded = true;
  return { exports: loaded.exports, cache: use };
}

export = { loadWithCodeCache };
