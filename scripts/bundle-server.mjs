// The trousseau command as shipped, in packages/server/dist/bundle: the server's tsc output bundled by
// esbuild. Node 20 has no module compile cache, and a start spent most of its time finding, reading and
// compiling the ~340 files the server loaded before serving; bundled, it loads about fifteen (issue 12,
// docs/benchmarks.md "Start-up profile, before and after"). Run after `tsc -b`; `pnpm build` does both.
//
//   trousseau.cjs   the command: dist/src/bin.cjs as tsc wrote it (CommonJS, so `trousseau version`
//                   answers before Node starts its ES module loader); anything else imports ./cli.js
//   cli.js          dist/src/cli.js and everything it imports, one ES module
//   *-<hash>.js     the parts loaded lazily, one chunk per `import()`: each command, each built-in
//                   provider (the AWS and Azure SDKs load only with their provider), the etcd report
//
// `--metafile <file>` also writes esbuild's account of which input went into which output.
//
// What the bundle keeps of the file layout:
// - It sits in dist/bundle, as deep in the package as dist/src, so the paths the server takes from its
//   own location (package.json for the version, `<install>/providers`) mean the same in both.
// - A few packages stay in node_modules and load by name from the bundle's directory, so each is a
//   direct dependency of @trousseau/server: etcd3 (it reads its .proto files from its own directory),
//   prom-client (loaded with `require` only when /metrics is served), pino's worker thread and the
//   transports it runs (pino-pretty). A third-party provider imports its own copy of @trousseau/core from
//   node_modules; core's checks are shape checks, so the two copies work together.
// - @grpc/proto-loader is used by @grpc/grpc-js only for channelz and ORCA, which Trousseau does not
//   serve; it is left out, and grpc-js would fail to require it should either be turned on.
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const SERVER = fileURLToPath(new URL('../packages/server/', import.meta.url));
const BUILT = `${SERVER}dist/src`;
const OUT_DIR = `${SERVER}dist/bundle`;
const EXTERNAL = ['etcd3', 'prom-client', 'pino-pretty', '@grpc/proto-loader'];

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
 * `await import('yaml')` of a CommonJS package gives its exports by name under Node (its loader finds the
 * names with a lexer). In a code-split bundle esbuild gives such a chunk a default export only, so the
 * names would be undefined; each such import is sent through a module that re-exports every name the
 * package has, read by loading it here.
 */
const commonJsDynamicImport = {
  name: 'commonjs-dynamic-import',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.path.startsWith('node:') || EXTERNAL.includes(args.path)) {
        return undefined;
      }
      const resolved = await builder.resolve(args.path, {
        kind: 'import-statement',
        resolveDir: args.resolveDir,
      });
      // An ES module (import or export statements) needs nothing; only CommonJS is re-exported.
      if (
        resolved.errors.length > 0 ||
        /^\s*(import|export)\b/m.test(await readFile(resolved.path, 'utf8'))
      ) {
        return undefined;
      }
      const names = Object.keys(createRequire(args.importer)(args.path)).filter(
        (name) => /^[A-Za-z_$][\w$]*$/.test(name) && name !== 'default' && name !== '__esModule',
      );
      return {
        path: args.path,
        namespace: 'commonjs-dynamic-import',
        pluginData: { names, resolveDir: args.resolveDir },
      };
    });
    builder.onLoad({ filter: /.*/, namespace: 'commonjs-dynamic-import' }, (args) => ({
      contents: `export { ${args.pluginData.names.join(', ')} } from ${JSON.stringify(args.path)};\nexport { default } from ${JSON.stringify(args.path)};\n`,
      resolveDir: args.pluginData.resolveDir,
      loader: 'js',
    }));
  },
};

const metafileAt = process.argv.includes('--metafile')
  ? process.argv[process.argv.indexOf('--metafile') + 1]
  : undefined;

await rm(OUT_DIR, { recursive: true, force: true });
const result = await build({
  entryPoints: { cli: `${BUILT}/cli.js` },
  outdir: OUT_DIR,
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.10',
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
  // Bundled CommonJS calls `require` for Node's built-ins and the externals.
  banner: {
    js: "import { createRequire as __trousseauCreateRequire } from 'node:module';\nconst require = __trousseauCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  metafile: metafileAt !== undefined,
  plugins: [workspaceRequire, pinoPaths, commonJsDynamicImport],
});
if (metafileAt !== undefined) await writeFile(metafileAt, JSON.stringify(result.metafile));

// The command itself needs nothing but Node's built-ins and ./cli.js, so it is used as tsc wrote it.
const command = await readFile(`${BUILT}/bin.cjs`, 'utf8');
const required = [...command.matchAll(/require\("([^"]+)"\)|import\('([^']+)'\)/g)].map((m) => m[1] ?? m[2]);
if (required.some((name) => !name.startsWith('node:') && name !== './cli.js')) {
  throw new Error(
    `dist/src/bin.cjs loads ${required.join(', ')}: only node: modules and ./cli.js can be bundled as is`,
  );
}
await writeFile(`${OUT_DIR}/trousseau.cjs`, command.replace(/\n\/\/# sourceMappingURL=.*$/, '\n'));
await chmod(`${OUT_DIR}/trousseau.cjs`, 0o755);
