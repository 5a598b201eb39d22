#!/usr/bin/env node
// What a server promotes to V8's old generation per call under load: the bytes that outlive two scavenges
// (or that something promoted still points to) and are then freed only by a full collection. It decides
// how fast the young generation grows to its maximum, and with it most of a server's RSS under load
// (docs/benchmarks.md, "What a closed stream keeps"). Not part of `pnpm bench`: a tool for looking.
// Each server, started as `pnpm bench` starts it (scenarios.mjs), runs under `node --trace-gc-nvp` and
// gets SECONDS of the rpc at 64 callers (scripts/bench/load.mjs); the scavenges of that window are summed.
// Usage: node scripts/bench/promotion.mjs baseline|trousseau|reference encrypt|decrypt [SECONDS]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from './run-load.mjs';
import { http2Reference, scenarios } from './scenarios.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const [which, op = 'decrypt', secondsText = '6'] = process.argv.slice(2);
const seconds = Number(secondsText);
/** The servers, as `pnpm bench` starts them. */
const servers = {
  baseline: scenarios.find((scenario) => scenario.name.endsWith('(baseline)')),
  trousseau: scenarios.find((scenario) => scenario.name === 'trousseau + local'),
  reference: http2Reference,
};
const server = servers[which];
if (server === undefined) throw new Error('usage: promotion.mjs baseline|trousseau|reference OP [SECONDS]');

/** The scavenges' lines of a `--trace-gc-nvp` trace, each as its name=value pairs. */
function scavenges(text) {
  return text
    .split('\n')
    .filter((line) => line.includes(' gc=s '))
    .map((line) =>
      Object.fromEntries(
        line
          .split(/\s+/)
          .flatMap((pair) => [pair.split('=')])
          .filter((kv) => kv.length === 2),
      ),
    );
}

const dir = await mkdtemp(join(tmpdir(), 'trousseau-promotion-'));
const target = await server.start({ dir, root, nodeArgs: ['--trace-gc-nvp'] });
try {
  const before = scavenges(target.output()).length;
  const load = await runLoad(root, target, op, 64, seconds, 'localhost');
  const window = scavenges(target.output()).slice(before);
  const calls = load.opsPerSec * seconds;
  const sum = (field) => window.reduce((total, gc) => total + Number(gc[field] ?? 0), 0);
  console.log(
    JSON.stringify({
      server: which,
      op,
      callsPerSecond: Math.round(load.opsPerSec),
      serverCpuUsPerCall: Math.round(load.serverCpuUsPerCall),
      serverRssMb: Math.round(load.serverRssMb),
      scavenges: window.length,
      allocatedBytesPerCall: Math.round(sum('allocated') / calls),
      promotedBytesPerCall: Math.round(sum('promoted') / calls),
      survivedBytesPerScavenge: Math.round(sum('new_space_survived') / window.length),
    }),
  );
} finally {
  await target.stop();
  await rm(dir, { recursive: true, force: true });
}
