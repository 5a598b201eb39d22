#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/test, examples/*/dist/test) with node's test runner,
// then prints the plain closing line "N passed, N failed" that CI reads.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Every workspace package: packages/*, examples/*, and deploy.
const packageDirs = [
  ...['packages', 'examples'].flatMap((root) => readdirSync(root).map((name) => join(root, name))),
  'deploy',
];
const files = [];
function walk(dir) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path);
    else if (entry.endsWith('.test.js')) files.push(path);
  }
}
for (const dir of packageDirs) {
  const testDir = join(dir, 'dist', 'test');
  try {
    if (statSync(testDir).isDirectory()) walk(testDir);
  } catch {
    // a package without tests
  }
}
const filter = process.argv.slice(2);
const selected =
  filter.length === 0 ? files : files.filter((file) => filter.some((part) => file.includes(part)));
if (selected.length === 0) {
  console.error('no test files found: run `pnpm run build` first');
  process.exit(1);
}

// The TAP copy of the results, read back for the closing line; one file per run.
const tapFile = join(tmpdir(), `trousseau-tests-${process.pid}.tap`);
const child = spawn(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    '--test-concurrency=2',
    ...selected,
  ],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_ENV: 'test' } },
);
child.on('exit', async (code, signal) => {
  const { readFileSync } = await import('node:fs');
  let passed = 0;
  let failed = 0;
  try {
    const tap = readFileSync(tapFile, 'utf8');
    passed = Number(/^# pass (\d+)/m.exec(tap)?.[1] ?? 0);
    failed = Number(/^# fail (\d+)/m.exec(tap)?.[1] ?? 0);
  } catch {
    failed = failed || 1;
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (signal ? 1 : 0));
});
