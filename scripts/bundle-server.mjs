// The trousseau command as shipped, in packages/server/dist/bundle: the server's tsc output bundled by
// esbuild into CommonJS, with a V8 code cache for the part every start runs. Node 20 has no module compile
// cache, and a start spent most of its time finding, reading and compiling what it loaded (issue 12,
// docs/benchmarks.md "Start-up profile, before and after" and "The code cache"). Run after `tsc -b`;
// `pnpm build` does both.
//
//   trousseau.cjs      the command: dist/src/bin.cjs as tsc wrote it (a version request answers before
//                      anything else loads); anything else loads cli.cjs through code-cache.cjs
//   code-cache.cjs     dist/src/code-cache.cjs: loads cli.cjs with its code cache
//   native-import.cjs  `import()` for what is named only at run time (a third-party provider): code run
//                      from the cache has no module loader for `import()` (code-cache.cts), so cli.cjs
//                      holds none and asks this file, which Node loads itself
//   cli.cjs            dist/src/cli.js and everything it imports, but for the parts below, one CommonJS
//                      file; the parts it loads lazily (each command, yaml, the local provider) are in it
//                      and run when first imported
//   cli.cjs.v8cache    the code cache: the functions a start of `serve` compiled, written by one such start
//                      right here (TROUSSEAU_WRITE_CODE_CACHE, code-cache.cts)
//   <part>.cjs         the large parts only some configs or commands use, one file each, required when
//                      first imported: the Vault, AWS KMS and Azure providers (each with its SDK), and the
//                      etcd report's two halves. Each takes @trousseau/core from cli.cjs, so the
//                      process has one copy of each, as unbundled.
//
// Why CommonJS: Node 20 can give V8 cached data only to a script compiled with `vm.Script`, not to an ES
// module; and Node's ES module loader itself cost a start about 25 ms more than `require` of the same code.
//
// `--metafile <file>` also writes esbuild's account of which input went into which output (the main build).
//
// What the bundle keeps of the file layout:
// - It sits in dist/bundle, as deep in the package as dist/src, so the paths the server takes from its
//   own location (`import.meta.url`: package.json for the version, `<install>/providers`) mean the same in
//   both.
// - A few packages stay in node_modules and load by name from the bundle's directory, so each is a
//   direct dependency of @trousseau/server: etcd3 (it reads its .proto files from its own directory),
//   prom-client (loaded with `require` only when /metrics is served), pino's worker thread and the
//   transports it runs (pino-pretty). A third-party provider imports its own copy of @trousseau/core from
//   node_modules; core's checks are shape checks, so the two copies work together.
// - @grpc/proto-loader is used by @grpc/grpc-js only for channelz and ORCA, which Trousseau does not
//   serve; it is left out, and grpc-js would fail to require it should either be turned on.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const SERVER = fileURLToPath(new URL('../packages/server/', import.meta.url));
const BUILT = `${SERVER}dist/src`;
const OUT_DIR = `${SERVER}dist/bundle`;
const EXTERNAL = ['etcd3', 'prom-client', 'pino-pretty', '@grpc/proto-loader'];

/** The parts in files of their own: what the server imports, and the file's name in dist/bundle. */
const PARTS = new Map([
  ['@trousseau/provider-vault', 'provider-vault'],
  ['@trousseau/provider-awskms', 'provider-awskms'],
  ['@trousseau/provider-azure', 'provider-azure'],
  ['../etcd-report/report.js', 'etcd-report'],
  ['../etcd-report/etcd-scan.js', 'etcd-scan'],
]);

/**
 * What the parts take from cli.cjs instead of bundling a copy: core, whose state (the request's abort, the
 * error codes) the server and the providers share. zod is not shared: whole, it would add its 400 KB of
 * locales to every start; each part bundles what it uses, as a third-party provider brings its own.
 */
const SHARED = ['@trousseau/core'];

/** The file that makes cli.cjs's `import()` of a module named at run time; and what it holds. */
const NATIVE_IMPORT = './native-import.cjs';
const NATIVE_IMPORT_SOURCE = `'use strict';
// import() for the bundle (scripts/bundle-server.mjs): a module named at run time, such as a third-party provider.
module.exports = (specifier) => import(specifier);
`;

/** cli.cjs's export through which the parts reach the shared modules. */
const SHARED_EXPORT = '__trousseauShared';

const requireFromServer = createRequire(`${SERVER}package.json`);
for (const name of EXTERNAL.filter((name) => name !== '@grpc/proto-loader')) {
  // An external the server's install cannot resolve would fail only when it is first used.
  requireFromServer.resolve(`${name}/package.json`);
}

/**
 * Our packages load CommonJS dependencies with `createRequire(import.meta.url)('name')`, which skips Node's
 * CommonJS lexer when they run unbundled; the bundler cannot follow that call, so it is written back to a
 * plain `require('name')`, which it bundles (or leaves to run time for an external).
 */
const workspaceRequire = {
  name: 'workspace-require',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]dist[\\/]src[\\/].*\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('createRequire(import.meta.url)(')) return undefined;
      const contents = source.replace(
        /createRequire\(import\.meta\.url\)\(\s*('[^']+'|"[^"]+")\s*,?\s*\)/g,
        'require($1)',
      );
      if (contents.includes('createRequire(import.meta.url)(')) {
        throw new Error(`${args.path}: a createRequire(import.meta.url)(...) call the bundler cannot follow`);
      }
      return { contents, loader: 'js' };
    });
  },
};

/**
 * pino runs its transports (pino-pretty) in a worker thread whose file it finds from its own directory
 * (`__dirname`), which a bundle does not have. pino lets a bundler name those files instead, through
 * `globalThis.__bundlerPathsOverrides`; here they are resolved from the installed pino when first asked for.
 */
const PINO_PATHS = `{
  const { createRequire } = require('node:module');
  const { dirname, join } = require('node:path');
  globalThis.__bundlerPathsOverrides = {
    ...globalThis.__bundlerPathsOverrides,
    get 'thread-stream-worker'() {
      return createRequire(require.resolve('pino')).resolve('thread-stream/lib/worker.js');
    },
    get 'pino-worker'() {
      return join(dirname(require.resolve('pino')), 'lib', 'worker.js');
    },
    get 'pino/file'() {
      return join(dirname(require.resolve('pino')), 'file.js');
    },
  };
}
`;
const pinoPaths = {
  name: 'pino-paths',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]node_modules[\\/]pino[\\/]pino\.js$/ }, async (args) => ({
      contents: `${PINO_PATHS}${await readFile(args.path, 'utf8')}`,
      loader: 'js',
    }));
  },
};

/**
 * In cli.cjs, an `import()` of a part becomes a `require` of its file, through a module that re-exports
 * it as the ES module it was: its named exports, and its default export.
 */
const partImports = {
  name: 'part-imports',
  setup(builder) {
    builder.onResolve({ filter: /./ }, (args) => {
      const part = PARTS.get(args.path);
      if (part === undefined || args.kind !== 'dynamic-import') return undefined;
      return { path: part, namespace: 'part' };
    });
    builder.onResolve({ filter: /\.cjs$/, namespace: 'part' }, (args) => ({
      path: args.path,
      external: true,
    }));
    builder.onLoad({ filter: /.*/, namespace: 'part' }, (args) => ({
      contents: `export * from './${args.path}.cjs';\nexport { default } from './${args.path}.cjs';\n`,
      loader: 'js',
    }));
  },
};

/** Core's `importModule` (import-module.ts) becomes native-import.cjs's. */
const nativeImport = {
  name: 'native-import',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]packages[\\/]core[\\/]dist[\\/]src[\\/]import-module\.js$/ }, () => ({
      contents: `import nativeImport from ${JSON.stringify(NATIVE_IMPORT)};\nexport const importModule = nativeImport;\n`,
      loader: 'js',
    }));
    builder.onResolve({ filter: /^\.\/native-import\.cjs$/ }, (args) => ({
      path: args.path,
      external: true,
    }));
  },
};

/** In a part, the shared modules are cli.cjs's: `require('./cli.cjs')` finds the one already loaded. */
const sharedFromCli = {
  name: 'shared-from-cli',
  setup(builder) {
    const filter = new RegExp(`^(${SHARED.map((name) => name.replace(/[/.]/g, '\\$&')).join('|')})$`);
    builder.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'shared' }));
    builder.onResolve({ filter: /^\.\/cli\.cjs$/, namespace: 'shared' }, () => ({
      path: './cli.cjs',
      external: true,
    }));
    builder.onLoad({ filter: /.*/, namespace: 'shared' }, (args) => ({
      contents: `module.exports = require('./cli.cjs').${SHARED_EXPORT}[${JSON.stringify(args.path)}];\n`,
      loader: 'js',
    }));
  },
};

/** cli.cjs's entry: the CLI, and the shared modules for the parts. */
const cliEntry = {
  name: 'cli-entry',
  setup(builder) {
    builder.onResolve({ filter: /^cli-entry$/ }, () => ({ path: 'cli-entry', namespace: 'cli-entry' }));
    builder.onLoad({ filter: /.*/, namespace: 'cli-entry' }, async () => {
      const paths = await Promise.all(
        SHARED.map(async (name) => {
          const found = await builder.resolve(name, { kind: 'import-statement', resolveDir: BUILT });
          if (found.errors.length > 0) throw new Error(`${name} does not resolve from the server`);
          return found.path;
        }),
      );
      return {
        contents: [
          `export * from ${JSON.stringify(`${BUILT}/cli.js`)};`,
          ...paths.map((path, index) => `import * as shared${index} from ${JSON.stringify(path)};`),
          `export const ${SHARED_EXPORT} = { ${SHARED.map((name, index) => `${JSON.stringify(name)}: shared${index}`).join(', ')} };`,
        ].join('\n'),
        resolveDir: BUILT,
        loader: 'js',
      };
    });
  },
};

/** What every output shares: CommonJS for Node 20, with `import.meta.url` the output file's URL. */
const COMMON = {
  // Input paths in the metafile relative to the repository, wherever the build is run from.
  absWorkingDir: fileURLToPath(new URL('..', import.meta.url)),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20.10',
  outdir: OUT_DIR,
  outExtension: { '.js': '.cjs' },
  // Without whitespace, the sources a start reads and keeps in memory shrink by a third (about 1 MB of idle
  // RSS); names are kept, so a stack trace still names its functions. The unbundled build ships beside it
  // (dist/src/bin.cjs runs the same program) for anyone who needs the original lines.
  minifyWhitespace: true,
  minifySyntax: true,
  external: EXTERNAL,
  // hpack.js (HPACK for the frame rewriter) takes Duplex from readable-stream, a copy of Node's streams, for
  // its stream classes, which Trousseau does not use; Node's own module serves, and a start compiles ~40 KB
  // less (the only package here that loads readable-stream).
  alias: { 'readable-stream': 'node:stream' },
  define: { 'import.meta.url': '__trousseauImportMetaUrl' },
  // Every import() becomes a require (code-cache.cts says why); ES-module-only code must be bundled.
  supported: { 'dynamic-import': false },
  banner: { js: "var __trousseauImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
  // pino's paths (pinoPaths) resolve `pino` at run time on purpose, from the bundle's directory.
  logOverride: { 'require-resolve-not-external': 'silent' },
};

/** Where a package the server imports by name resolves to. */
function entryOf(specifier) {
  // A relative one is imported by a command (dist/src/commands).
  return specifier.startsWith('.')
    ? join(BUILT, 'commands', specifier)
    : requireFromServer.resolve(specifier);
}

const metafileAt = process.argv.includes('--metafile')
  ? process.argv[process.argv.indexOf('--metafile') + 1]
  : undefined;

await rm(OUT_DIR, { recursive: true, force: true });
const main = await build({
  ...COMMON,
  entryPoints: { cli: 'cli-entry' },
  metafile: true,
  plugins: [cliEntry, partImports, nativeImport, workspaceRequire, pinoPaths],
});
if (metafileAt !== undefined) await writeFile(metafileAt, JSON.stringify(main.metafile));

const parts = await build({
  ...COMMON,
  entryPoints: Object.fromEntries([...PARTS].map(([specifier, name]) => [name, entryOf(specifier)])),
  metafile: true,
  plugins: [sharedFromCli, workspaceRequire],
});
// A part with its own copy of core would not share the server's: every import of core in a part must go
// through cli.cjs.
for (const [output, { inputs }] of Object.entries(parts.metafile.outputs)) {
  const copied = Object.keys(inputs).filter((input) => /packages\/core\//.test(input));
  if (copied.length > 0) throw new Error(`${output} bundles its own copy of ${copied[0]}`);
}
// An import() left in cli.cjs would fail when it runs (code-cache.cts).
const leftImport = /(^|[^\w$#.])import\(/m.exec(await readFile(`${OUT_DIR}/cli.cjs`, 'utf8'));
if (leftImport !== null)
  throw new Error(
    `cli.cjs holds an import(): ...${leftImport.input.slice(leftImport.index - 80, leftImport.index + 80)}...`,
  );
await writeFile(`${OUT_DIR}/native-import.cjs`, NATIVE_IMPORT_SOURCE);

// The command itself needs nothing but Node's built-ins, the loader and ./cli.js, so it is used as tsc wrote it.
const command = await readFile(`${BUILT}/bin.cjs`, 'utf8');
const required = [...command.matchAll(/require\('([^']+)'\)|require\("([^"]+)"\)|import\('([^']+)'\)/g)].map(
  (m) => m[1] ?? m[2] ?? m[3],
);
const allowed = new Set(['./cli.js', './code-cache.cjs']);
if (required.some((name) => !name.startsWith('node:') && !allowed.has(name))) {
  throw new Error(
    `dist/src/bin.cjs loads ${required.join(', ')}: only node: modules, ./code-cache.cjs and ./cli.js can be used as they are`,
  );
}
const withoutSourceMap = (text) => text.replace(/\n\/\/# sourceMappingURL=.*$/, '\n');
await writeFile(`${OUT_DIR}/trousseau.cjs`, withoutSourceMap(command));
await chmod(`${OUT_DIR}/trousseau.cjs`, 0o755);
await writeFile(
  `${OUT_DIR}/code-cache.cjs`,
  withoutSourceMap(await readFile(`${BUILT}/code-cache.cjs`, 'utf8')),
);

/**
 * The environment of the processes the build runs: without NODE_OPTIONS, since V8 stamps a cache with the
 * flags of the process that made it and refuses it under others; the cache is made for a plain start.
 */
function plainEnvironment(extra = {}) {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

/** How long the build waits for each step of the start that writes the cache, however loaded the machine. */
const STEP_TIMEOUT_MS = 60_000;

/** Resolves with `promise`, or rejects naming `what` after STEP_TIMEOUT_MS. */
function withinTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took more than ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Writes cli.cjs.v8cache: one start of `serve` with a config file (the local provider, as the embedded
 * default has it), one Encrypt and one Decrypt through it, then SIGTERM; the process writes the cache of
 * every function it compiled when it exits. Then checks that a plain start takes it. The server never
 * outlives the build, whatever fails.
 */
async function writeCodeCache() {
  const command = `${OUT_DIR}/trousseau.cjs`;
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-code-cache-'));
  const socket = join(dir, 'kms.sock');
  let server;
  let exited;
  try {
    const config = join(dir, 'config.yaml');
    await writeFile(
      config,
      `version: 1\nsocket:\n  path: ${socket}\nproviders:\n  - name: local-dev\n    type: local\n    config:\n      keyFile: ${join(dir, 'keyring.json')}\n      createIfMissing: true\n`,
    );
    server = spawn(process.execPath, [command, 'serve', '--config', config, '--log-level', 'info'], {
      cwd: dir,
      env: plainEnvironment({ TROUSSEAU_WRITE_CODE_CACHE: '1' }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    exited = new Promise((resolve) => server.once('close', resolve));
    await withinTimeout(
      new Promise((resolve, reject) => {
        let output = '';
        server.stdout.on('data', (chunk) => {
          output += chunk;
          if (output.includes('trousseau is serving')) resolve();
        });
        server.once('close', (code) =>
          reject(new Error(`serve exited ${code} before it served:\n${output}`)),
        );
      }),
      'the start that writes the code cache',
    );
    const { ciphertext, keyId } = JSON.parse(
      await runNode([command, 'encrypt', '--socket', socket, 'cache'], dir, 'trousseau encrypt'),
    );
    const plaintext = await runNode(
      [command, 'decrypt', '--socket', socket, '--key-id', keyId, ciphertext],
      dir,
      'trousseau decrypt',
    );
    if (plaintext !== 'cache\n')
      throw new Error(`the start that writes the code cache decrypted "${plaintext}"`);
    server.kill('SIGTERM');
    const code = await withinTimeout(exited, 'the stop of the start that writes the code cache');
    if (code !== 0) throw new Error(`serve exited ${code} when stopped`);
    const use = await runNode(
      [
        '-e',
        `process.stdout.write(require('./code-cache.cjs').loadWithCodeCache(${JSON.stringify(`${OUT_DIR}/cli.cjs`)}).cache)`,
      ],
      OUT_DIR,
      'checking the code cache',
    );
    if (use !== 'accepted')
      throw new Error(`a plain start does not take the code cache just written: ${use}`);
  } finally {
    if (server !== undefined && server.exitCode === null && server.signalCode === null) {
      server.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `node ...args` in a plain environment, as `what` in errors; its stdout. */
function runNode(args, cwd, what) {
  const child = spawn(process.execPath, args, {
    cwd,
    env: plainEnvironment(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  const done = new Promise((resolve, reject) => {
    child.once('close', (code) =>
      code === 0 ? resolve(output) : reject(new Error(`${what} exited ${code}`)),
    );
  });
  return withinTimeout(done, what).catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });
}

await writeCodeCache();
