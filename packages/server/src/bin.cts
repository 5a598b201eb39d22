#!/usr/bin/env node
// The trousseau command. It is CommonJS so that a lone version request (`trousseau version`, `--version`,
// `-V`) is answered before anything else loads: the answer is the text commander prints (cli.ts), read from
// this package's package.json. Anything else loads the CLI, and each command loads what it needs when it
// runs. The same file is the entry of the built package (dist/src/bin.cjs, beside cli.js, an ES module)
// and of the bundle (dist/bundle/trousseau.cjs, beside cli.cjs, the CommonJS bundle, which is loaded with
// its V8 code cache: code-cache.cts); both sit two directories below the package.json.
import fs = require('node:fs');
import path = require('node:path');
import type * as Cli from './cli.js';
import type CodeCache = require('./code-cache.cjs');

/** The CLI, and what became of the bundle's code cache (undefined for the unbundled build). */
interface LoadedCli {
  readonly cli: typeof Cli;
  readonly codeCache: string | undefined;
}

function loadCli(): Promise<LoadedCli> {
  const bundled = path.join(__dirname, 'cli.cjs');
  if (!fs.existsSync(bundled)) return import('./cli.js').then((cli) => ({ cli, codeCache: undefined }));
  return new Promise((resolve) => {
    // Required here, not above: a version request needs none of it (nor the modules it loads).
    const { loadWithCodeCache } = module.require('./code-cache.cjs') as typeof CodeCache;
    const loaded = loadWithCodeCache(bundled);
    resolve({ cli: loaded.exports as typeof Cli, codeCache: loaded.cache });
  });
}

const args = process.argv.slice(2);
const only = args.length === 1 ? args[0] : undefined;
if (only === 'version' || only === '--version' || only === '-V') {
  const manifest = path.join(__dirname, '..', '..', 'package.json');
  const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string };
  fs.writeSync(1, only === 'version' ? `trousseau ${version}\n` : `${version}\n`);
} else {
  loadCli().then(
    async ({ cli, codeCache }) => {
      const code = await cli.runCli(process.argv, { codeCache });
      if (code !== 0) process.exit(code);
    },
    (error: unknown) => {
      process.stderr.write(
        `trousseau: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
