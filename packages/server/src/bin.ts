#!/usr/bin/env node
// The trousseau command. Each command loads what it needs when it runs, so a command loads little more
// than the argument parser; reflect-metadata comes with the composition root (server-container).
// The version, asked alone (`trousseau version`, `--version`, `-V`), is printed before even the argument
// parser loads: the answer is the same text commander prints (cli.ts), at the cost of starting node.
import { writeSync } from 'node:fs';

const args = process.argv.slice(2);
const only = args.length === 1 ? args[0] : undefined;
if (only === 'version' || only === '--version' || only === '-V') {
  const { TROUSSEAU_VERSION } = await import('./version.js');
  writeSync(1, only === 'version' ? `trousseau ${TROUSSEAU_VERSION}\n` : `${TROUSSEAU_VERSION}\n`);
} else {
  const { runCli } = await import('./cli.js');
  const code = await runCli(process.argv);
  if (code !== 0) process.exit(code);
}
