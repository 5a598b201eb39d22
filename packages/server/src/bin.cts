#!/usr/bin/env node
// The trousseau command. It is CommonJS so that a lone version request (`trousseau version`, `--version`,
// `-V`) is answered before Node starts its ES module loader (about 25 ms of CPU, issue 12): the answer is
// the text commander prints (cli.ts), read from this package's package.json. Anything else loads the CLI,
// an ES module, and each command loads what it needs when it runs. The same file is the entry of the
// built package (dist/src/bin.cjs, beside cli.js) and of the bundle (dist/bundle/trousseau.cjs, beside the
// bundled cli.js); both sit two directories below the package.json.
import fs = require('node:fs');
import path = require('node:path');

const args = process.argv.slice(2);
const only = args.length === 1 ? args[0] : undefined;
if (only === 'version' || only === '--version' || only === '-V') {
  const manifest = path.join(__dirname, '..', '..', 'package.json');
  const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string };
  fs.writeSync(1, only === 'version' ? `trousseau ${version}\n` : `${version}\n`);
} else {
  import('./cli.js').then(
    async ({ runCli }) => {
      const code = await runCli(process.argv);
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
