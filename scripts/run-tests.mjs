#!/usr/bin/env node
// Runs the workspace's tests with node's test runner and ends with the line CI reads:
//   "N passed, N failed, N skipped, N todo"
// A run fails (non-zero exit) when a test fails, and also when a test is skipped or marked todo without a
// matching entry in scripts/allowed-skips.json, which says why each allowed skip may happen. Green means
// every test ran.
//
// Which files run: the test sources, not what happens to lie in dist/. `tsc -b` never deletes the output
// of a deleted source, so dist/test can hold compiled tests of sources that are gone. Cleaning dist/ first
// would work only for a run that also rebuilds everything, and would race with a build running beside it
// (deleting outputs that other packages import). So the list is taken from the sources instead: for each
// `test/**/*.test.ts` of a workspace package, its compiled file under the package's outDir. A source
// whose compiled file is missing stops the run (it has not been built); a compiled test without a source
// is left alone and named, so the run executes exactly the tests that exist.
//
// Usage: node scripts/run-tests.mjs [substring ...]   (runs the files whose path contains a substring)
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ALLOWED_SKIPS = join(ROOT, 'scripts', 'allowed-skips.json');

/** A path relative to the repository, with forward slashes, as the allow-list and messages spell it. */
const repoRelative = (path) => relative(ROOT, path).split(sep).join('/');

function walk(dir, keep, found = []) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path, keep, found);
    else if (keep(entry)) found.push(path);
  }
  return found;
}

// Every workspace package with tests: packages/*, examples/*, and deploy.
const packageDirs = [
  ...['packages', 'examples'].flatMap((root) =>
    readdirSync(join(ROOT, root)).map((name) => join(ROOT, root, name)),
  ),
  join(ROOT, 'deploy'),
].filter((dir) => existsSync(join(dir, 'tsconfig.json')));

/** Compiled test file (absolute) -> its source, relative to the repository. */
const sourceOf = new Map();
const notBuilt = [];
const orphans = [];
for (const dir of packageDirs) {
  const { compilerOptions = {} } = JSON.parse(readFileSync(join(dir, 'tsconfig.json'), 'utf8'));
  const rootDir = resolve(dir, compilerOptions.rootDir ?? '.');
  const outDir = resolve(dir, compilerOptions.outDir ?? 'dist');
  const expected = new Set();
  for (const source of walk(join(dir, 'test'), (name) => name.endsWith('.test.ts'))) {
    const compiled = join(outDir, relative(rootDir, source)).replace(/\.ts$/, '.js');
    expected.add(compiled);
    if (existsSync(compiled)) sourceOf.set(compiled, repoRelative(source));
    else notBuilt.push(repoRelative(source));
  }
  for (const compiled of walk(join(outDir, relative(rootDir, join(dir, 'test'))), (name) =>
    name.endsWith('.test.js'),
  )) {
    if (!expected.has(compiled)) orphans.push(repoRelative(compiled));
  }
}

const filter = process.argv.slice(2);
const matches = (source, compiled) =>
  filter.length === 0 || filter.some((part) => source.includes(part) || compiled.includes(part));
const selected = [...sourceOf].filter(([compiled, source]) => matches(source, compiled));
const missing = notBuilt.filter((source) => matches(source, source));

if (orphans.length > 0) {
  console.log(`# not run, their sources are gone: ${orphans.join(', ')}`);
}
if (missing.length > 0) {
  console.error(`not built: ${missing.join(', ')}; run \`npx tsc -b\` first`);
  process.exit(1);
}
if (selected.length === 0) {
  console.error(
    filter.length === 0
      ? 'no test files found: run `npx tsc -b` first'
      : `no test file matches ${filter.join(' or ')}`,
  );
  process.exit(1);
}

/**
 * Allowed skips and todos: `file` (a test source, or a folder ending in "/"), `reason` (the exact
 * message given to skip/todo; a trailing "*" matches any ending), `why`, and optionally `when`: names
 * of environment variables that must all be set for the entry to apply.
 */
function readAllowList() {
  const entries = JSON.parse(readFileSync(ALLOWED_SKIPS, 'utf8'));
  for (const [index, entry] of entries.entries()) {
    for (const field of ['kind', 'file', 'reason', 'why']) {
      if (typeof entry[field] !== 'string' || entry[field].trim() === '') {
        throw new Error(`${repoRelative(ALLOWED_SKIPS)}[${index}]: "${field}" must be a non-empty string`);
      }
    }
    if (entry.kind !== 'skip' && entry.kind !== 'todo') {
      throw new Error(`${repoRelative(ALLOWED_SKIPS)}[${index}]: "kind" is "skip" or "todo"`);
    }
    // An entry for a test that is gone would allow the next file of that name without anyone noticing.
    if (!existsSync(join(ROOT, entry.file))) {
      throw new Error(`${repoRelative(ALLOWED_SKIPS)}[${index}]: ${entry.file} does not exist`);
    }
  }
  return entries.filter((entry) => (entry.when ?? []).every((name) => (process.env[name] ?? '') !== ''));
}

function allowedBy(allowList, kind, source, reason) {
  return allowList.find(
    (entry) =>
      entry.kind === kind &&
      (entry.file.endsWith('/') ? source.startsWith(entry.file) : source === entry.file) &&
      (entry.reason.endsWith('*') ? reason.startsWith(entry.reason.slice(0, -1)) : reason === entry.reason),
  );
}

// Two reporters: the usual spec output for people, and one JSON line per test for the closing line.
const eventsFile = join(tmpdir(), `trousseau-tests-${process.pid}.jsonl`);
const child = spawn(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${join(ROOT, 'scripts', 'test-events-reporter.mjs')}`,
    `--test-reporter-destination=${eventsFile}`,
    '--test-concurrency=2',
    ...selected.map(([compiled]) => compiled),
  ],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, NODE_ENV: 'test' } },
);
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward).on('SIGTERM', forward);

child.on('exit', (code, signal) => {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let todo = 0;
  const refused = [];
  const allowed = [];
  let problem;
  let allowList = [];
  try {
    allowList = readAllowList();
  } catch (error) {
    // Every skip and todo is then refused: the run fails, with the counts and the reason.
    problem = `the allow-list is invalid: ${error instanceof Error ? error.message : String(error)}`;
  }
  try {
    const events = readFileSync(eventsFile, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line));
    for (const event of events) {
      // A suite counts only for what is its own: being skipped whole, or failing outside its tests
      // (a hook or its body); "some of its tests failed" is counted on the tests.
      if (event.suite && !event.skip && !event.todo && event.failureType === 'subtestsFailed') continue;
      if (event.suite && event.outcome === 'pass' && !event.skip && !event.todo) continue;
      const kind = event.todo ? 'todo' : event.skip ? 'skip' : undefined;
      // A skipped test that failed anyway is a failure; a todo is a todo whatever its outcome.
      if (kind === 'todo') todo += 1;
      else if (event.outcome === 'fail') failed += 1;
      else if (kind === 'skip') skipped += 1;
      else passed += 1;
      if (kind === undefined || (kind === 'skip' && event.outcome === 'fail')) continue;
      const source = sourceOf.get(event.file) ?? repoRelative(event.file ?? '?');
      const reason = typeof event[kind] === 'string' ? event[kind] : '';
      const where = `${source}: "${event.name}": ${kind}${reason === '' ? ' without a reason' : ` (${reason})`}`;
      const entry = allowedBy(allowList, kind, source, reason);
      if (entry === undefined) refused.push(where);
      else allowed.push(`${where}, allowed: ${entry.why}`);
    }
  } catch (error) {
    problem = `could not read the test results: ${error instanceof Error ? error.message : String(error)}`;
    if (failed === 0) failed = 1;
  } finally {
    rmSync(eventsFile, { force: true });
  }
  for (const line of allowed) console.log(`# ${line}`);
  if (refused.length > 0) {
    console.log(
      `# ${refused.length} skipped or todo test(s) not allowed by scripts/allowed-skips.json (fix them, or add an entry that says why):`,
    );
    for (const line of refused) console.log(`#   ${line}`);
  }
  if (problem !== undefined) console.log(`# ${problem}`);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped, ${todo} todo`);
  const failedRun =
    (code ?? 1) !== 0 || signal !== null || failed > 0 || refused.length > 0 || problem !== undefined;
  process.exit(failedRun ? code || 1 : 0);
});
