#!/usr/bin/env node
// pnpm bench: measures the KMS front-end over its unix socket from a separate load process, beside a
// bare @grpc/grpc-js server on the same kind of socket, and writes the figures to docs/benchmarks.md.
// Usage: pnpm bench [--seconds N] [--rounds N] [--only REGEXP-OF-SCENARIO-NAMES]
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { measureInterleaved } from './bench/interleaved.mjs';
import { measureLoneCall } from './bench/lone-call.mjs';
import { measureProcessCosts } from './bench/process-costs.mjs';
import { runLoad } from './bench/run-load.mjs';
import { hopParts, http2Reference, scenarios } from './bench/scenarios.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1] || 0) || 3;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
// One round's ratio moves by a quarter either way on a shared 2-core machine, and a median of 5 by about a
// tenth from run to run: 9 rounds, about 2 minutes more.
const rounds = Number(args[args.indexOf('--rounds') + 1] || 0) || 9;
/**
 * Rounds of the lone Vault call: each runs 14 rows at one caller from Go, whose warm-up (2000 calls) takes
 * about as long as the row, so a round costs about a minute and three quarters. Its per-round differences
 * move less than the 64-caller ratios.
 */
const LONE_CALL_ROUNDS = Math.min(rounds, 5);
/** Issue 12's load: 64 callers, as many as kube-apiservers of a large cluster hold in flight. */
const INTERLEAVED_CONCURRENCY = 64;
const concurrencies = [1, 16, 64];
const ops = ['encrypt', 'decrypt'];

/** A figure for the table, or a dash where the row has none (no server process of its own). */
function formatNumber(value, digits) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';
}

const results = [];
const dir = await mkdtemp(join(tmpdir(), 'trousseau-bench-'));
try {
  for (const scenario of scenarios) {
    if (only !== undefined && !new RegExp(only).test(scenario.name)) continue;
    // A server per authority: RSS is a process's high-water mark, so rows of one path must not read the
    // memory the other path's rows left behind.
    for (const authority of scenario.authorities ?? ['localhost']) {
      const name = authority === 'localhost' ? scenario.name : `${scenario.name}, socket path as :authority`;
      process.stderr.write(`\n== ${name}\n`);
      const scenarioDir = join(dir, authority);
      await mkdir(scenarioDir, { recursive: true });
      const target = await scenario.start({ dir: scenarioDir, root });
      try {
        for (const op of ops) {
          for (const concurrency of concurrencies) {
            const measured = await runLoad(root, target, op, concurrency, seconds, authority);
            const result = { scenario: name, ...measured };
            results.push(result);
            process.stderr.write(
              `${op.padEnd(8)} c=${String(concurrency).padStart(2)} ${result.opsPerSec.toFixed(0).padStart(7)} ops/s  p50 ${result.p50.toFixed(2)} ms  p99 ${result.p99.toFixed(2)} ms  server ${formatNumber(result.serverCpuUsPerCall, 0)} µs CPU/call ${formatNumber(result.serverRssMb, 0)} MB  errors ${result.errors}\n`,
            );
          }
        }
      } finally {
        await target.stop();
      }
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

let interleaved;
if (only === undefined || /interleaved/.test(only)) {
  process.stderr.write(
    `\n== interleaved: baseline, trousseau + local and node:http2 without grpc-js, ${rounds} rounds\n`,
  );
  const scratch = await mkdtemp(join(tmpdir(), 'trousseau-bench-'));
  try {
    interleaved = await measureInterleaved({
      root,
      dir: scratch,
      seconds,
      rounds,
      concurrency: INTERLEAVED_CONCURRENCY,
      baseline: scenarios[0],
      trousseau: scenarios[1],
      references: [http2Reference],
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

let loneCall;
if (only === undefined || /lone-call/.test(only)) {
  process.stderr.write(
    `\n== lone Vault call: emulator alone, the floor and trousseau + vault at 0 ms, ${LONE_CALL_ROUNDS} rounds\n`,
  );
  const scratch = await mkdtemp(join(tmpdir(), 'trousseau-bench-'));
  const byName = (pattern) => scenarios.find((scenario) => pattern.test(scenario.name));
  try {
    loneCall = await measureLoneCall({
      root,
      dir: scratch,
      seconds,
      rounds: LONE_CALL_ROUNDS,
      alone: byName(/^vault emulator alone \(0 ms/),
      floor: byName(/^bare grpc-js \+ vault \(emulator, 0 ms/),
      trousseau: [
        byName(/^trousseau \+ vault \(emulator, 0 ms, batching off/),
        byName(/^trousseau \+ vault \(emulator, 0 ms, batching on/),
      ],
      grpcLeg: hopParts.grpcLeg,
      http2Leg: hopParts.http2Leg,
      minimalFloor: hopParts.minimalFloor,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

process.stderr.write('\n== process: start-up, idle memory, CLI\n');
const processCosts = only === undefined || /process/.test(only) ? await measureProcessCosts(root) : undefined;
if (processCosts !== undefined) process.stderr.write(`${JSON.stringify(processCosts)}\n`);

await mkdir(join(root, 'bench-results'), { recursive: true });
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
const stamp = new Date().toISOString();
await writeFile(
  join(root, 'bench-results/latest.json'),
  JSON.stringify({ stamp, machine, seconds, results, interleaved, loneCall, processCosts }, null, 2),
);

const table = [
  '| scenario | rpc | concurrency | ops/s | p50 ms | p99 ms | server CPU µs/call | server RSS MB | errors |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.op} | ${r.concurrency} | ${r.opsPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${formatNumber(r.serverCpuUsPerCall, 0)} | ${formatNumber(r.serverRssMb, 0)} | ${r.errors} |`,
  ),
].join('\n');
/** Each Trousseau row against the baseline row of the same rpc and concurrency, measured in the same run. */
const BASELINE = scenarios[0]?.name;
const ratios = results
  .filter((r) => r.scenario !== BASELINE && Number.isFinite(r.serverCpuUsPerCall))
  .map((r) => {
    const base = results.find(
      (b) => b.scenario === BASELINE && b.op === r.op && b.concurrency === r.concurrency,
    );
    if (base === undefined) return undefined;
    return `| ${r.scenario} | ${r.op} | ${r.concurrency} | ${formatNumber(r.serverCpuUsPerCall / base.serverCpuUsPerCall, 2)}x | ${formatNumber(r.opsPerSec / base.opsPerSec, 2)}x | ${formatNumber(r.serverRssMb, 0)} / ${formatNumber(base.serverRssMb, 0)} |`;
  })
  .filter((line) => line !== undefined);
const ratioTable = [
  `Against \`${BASELINE}\`, same rpc and concurrency, same run:`,
  '',
  '| scenario | rpc | concurrency | server CPU per call | calls per second | server RSS MB (this / baseline) |',
  '|---|---|---:|---:|---:|---:|',
  ...ratios,
].join('\n');
const range = ([low, high]) => `${low.toFixed(2)}-${high.toFixed(2)}`;
const interleavedTable =
  interleaved === undefined
    ? ''
    : [
        `Interleaved (issue 12's measure): the baseline and \`trousseau + local\` up side by side, with the baseline's work served by node:http2 without grpc-js (\`${http2Reference.name}\`, scripts/bench/http2-unary-server.mjs) as a reference, ${interleaved.rounds} rounds at concurrency ${interleaved.concurrency}, each round running every target once per rpc in a rotating order; each figure is the median over the rounds of the target's figure divided by the baseline's of the same round (the range in brackets):`,
        '',
        '| scenario | rpc | server CPU per call | calls per second | server RSS MB (this / baseline), median |',
        '|---|---|---:|---:|---:|',
        ...interleaved.rows.map(
          (row) =>
            `| ${row.target} | ${row.op} | ${row.cpuRatio.toFixed(2)}x (${range(row.cpuRange)}) | ${row.throughputRatio.toFixed(2)}x (${range(row.throughputRange)}) | ${row.rssMb.toFixed(0)} / ${row.baselineRssMb.toFixed(0)} |`,
        ),
      ].join('\n');
const ms = (value) => `${value >= 0 ? '+' : ''}${value.toFixed(2)}`;
const msRange = ({ range: [low, high] }) => `${ms(low)} to ${ms(high)}`;
const us = (value) => `${value >= 0 ? '+' : ''}${value.toFixed(0)}`;
const usRange = ({ median: middle, range: [low, high] }) => `${us(middle)}: ${us(low)} to ${us(high)}`;
const loneCallTable =
  loneCall === undefined
    ? ''
    : [
        `A lone Vault call (issue 12's measure): the Vault emulator at 0 ms alone, the floor (\`bare grpc-js + vault\`) and \`trousseau + vault\`, called from Go (${loneCall.clients.join(', ')}: kube-apiserver's client), ${loneCall.rounds} rounds at concurrency 1, each round running every target once per rpc in a rotating order; p50 in ms, each a median over the rounds, differences taken within each round (the range in brackets); ${loneCall.errors} failed calls:`,
        '',
        '| scenario | rpc | p50: alone / floor / trousseau | trousseau over alone (the goal: at most +0.50) | trousseau over the floor (its own share) | the floor over alone (the hop) | server CPU per call, µs: floor / trousseau (its own share) |',
        '|---|---|---:|---:|---:|---:|---:|',
        ...loneCall.rows.map(
          (row) =>
            `| ${row.target} | ${row.op} | ${row.aloneP50.toFixed(2)} / ${row.floorP50.toFixed(2)} / ${row.trousseauP50.toFixed(2)} | ${ms(row.overAlone.median)} (${msRange(row.overAlone)}) | ${ms(row.overFloor.median)} (${msRange(row.overFloor)}) | ${ms(row.hop.median)} (${msRange(row.hop)}) | ${row.floorCpu.toFixed(0)} / ${row.trousseauCpu.toFixed(0)} (${usRange(row.cpuOverFloor)}) |`,
        ),
        '',
        `Where the hop goes, from the same rounds: the gRPC leg alone (\`${hopParts.grpcLeg.name}\`), the same leg without grpc-js (\`${hopParts.http2Leg.name}\`, scripts/bench/http2-unary-server.mjs), the floor with a minimal HTTP/1.1 client (scripts/bench/minimal-http.mjs: one keep-alive connection, Content-Length only) and the floor with node:http; p50 in ms and each server's CPU per call in µs, medians over the rounds:`,
        '',
        '| rpc | p50: alone / gRPC leg on grpc-js / on node:http2 / floor, minimal client / floor, node:http | gRPC leg: grpc-js over node:http2 | node:http over the minimal client | server CPU per call, µs: gRPC leg on grpc-js / on node:http2 / floor, minimal client / floor, node:http / trousseau, batching off / on |',
        '|---|---:|---:|---:|---:|',
        ...loneCall.hop.map(
          (part) =>
            `| ${part.op} | ${part.aloneP50.toFixed(2)} / ${part.grpcLegP50.toFixed(2)} / ${part.http2LegP50.toFixed(2)} / ${part.minimalFloorP50.toFixed(2)} / ${part.floorP50.toFixed(2)} | ${ms(part.grpcJsOverHttp2.median)} (${msRange(part.grpcJsOverHttp2)}) | ${ms(part.nodeHttpOverMinimal.median)} (${msRange(part.nodeHttpOverMinimal)}) | ${[part.cpu.grpcLeg, part.cpu.http2Leg, part.cpu.minimalFloor, part.cpu.floor, ...part.cpu.trousseau.map((t) => t.cpu)].map((value) => value.toFixed(0)).join(' / ')} |`,
        ),
      ].join('\n');
const processTable =
  processCosts === undefined
    ? ''
    : [
        `Process costs (median of ${processCosts.runs} runs):`,
        '',
        '| figure | value |',
        '|---|---:|',
        `| \`trousseau serve\` (embedded default): spawn to first answered Status | ${processCosts.startToReadyMs.toFixed(0)} ms |`,
        `| \`trousseau serve\`: CPU time used by then (less sensitive to a busy machine than wall time) | ${processCosts.startCpuMs.toFixed(0)} ms |`,
        `| \`trousseau serve\` RSS, idle and serving, 2 s after the first call | ${processCosts.idleRssMb.toFixed(0)} MB |`,
        `| \`trousseau serve\` RSS, idle and serving, 30 s after the first call (one start; V8 has shrunk its heap by then) | ${processCosts.settledIdleRssMb.toFixed(0)} MB |`,
        `| \`trousseau version\` | ${processCosts.versionMs.toFixed(0)} ms |`,
        `| \`node -e 0\` on the same machine, for scale | ${processCosts.bareNodeMs.toFixed(0)} ms |`,
      ].join('\n');
const generated = `<!-- bench:start (written by \`pnpm bench\`; do not edit by hand) -->\nLast run: ${stamp} on ${machine}, ${seconds} s per row.\n\n${table}\n\n${ratioTable}\n\n${interleavedTable}\n\n${loneCallTable}\n\n${processTable}\n<!-- bench:end -->`;
const docPath = join(root, 'docs/benchmarks.md');
let doc = await readFile(docPath, 'utf8').catch(
  () => '# Benchmarks\n\n<!-- bench:start --><!-- bench:end -->\n',
);
doc = doc.replace(/<!-- bench:start[\s\S]*<!-- bench:end -->/, generated);
// Formatted as `pnpm lint` checks it, so a run of the bench leaves the tree passing its own lint.
doc = await format(doc, { ...(await resolveConfig(docPath)), filepath: docPath });
// A partial run's tables go to stdout: the docs keep the last whole run.
if (only) process.stdout.write(`${generated}\n`);
else await writeFile(docPath, doc);
process.stderr.write(
  `\nwrote ${only ? 'bench-results/latest.json (partial run: docs unchanged)' : 'docs/benchmarks.md and bench-results/latest.json'}\n`,
);
