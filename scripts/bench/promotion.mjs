#!/usr/bin/env node
// What a server promotes to V8's old generation per call under load: the bytes that outlive two scavenges
// (or that something promoted still points to) and are then freed only by a full collection. It decides
// how fast the young generation grows to its maximum, and with it most of a server's RSS under load
// (docs/benchmarks.md, "What a closed stream keeps"). Not part of `pnpm bench`: a tool for looking.
// Each server runs under `node --trace-gc-nvp`, its trace in a file, and gets SECONDS of the rpc at 64
// callers (scripts/bench/load.mjs); the scavenges of that window are summed.
// Usage: node scripts/bench/promotion.mjs baseline|trousseau|reference encrypt|decrypt [SECONDS]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad } from './run-load.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const [which, op = 'decrypt', secondsText = '6'] = process.argv.slice(2);
const seconds = Number(secondsText);
const dir = mkdtempSync(join(tmpdir(), 'trousseau-promotion-'));
const socket = join(dir, 'kms.sock');

function serverArgs() {
  if (which === 'baseline') return [join(root, 'scripts/bench/bare-server.mjs'), socket];
  if (which === 'reference') return [join(root, 'scripts/bench/http2-unary-server.mjs'), socket];
  if (which !== 'trousseau')
    throw new Error('usage: promotion.mjs baseline|trousseau|reference OP [SECONDS]');
  const config = join(dir, 'config.json');
  const keyFile = join(dir, 'keys.json');
  writeFileSync(
    config,
    JSON.stringify({
      version: 1,
      socket: { path: socket },
      logging: { level: 'warn' },
      providers: [{ name: 'local', type: 'local', config: { keyFile, createIfMissing: true } }],
    }),
  );
  return [join(root, 'packages/server/dist/bundle/trousseau.cjs'), 'serve', '--config', config];
}

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

const trace = join(dir, 'gc-trace.log');
const server = spawn(process.execPath, ['--trace-gc-nvp', ...serverArgs()], {
  cwd: root,
  stdio: ['ignore', openSync(trace, 'w'), 'inherit'],
});
try {
  while (!existsSync(socket)) await sleep(20);
  const before = scavenges(readFileSync(trace, 'utf8')).length;
  const load = await runLoad(root, { socket, pid: server.pid }, op, 64, seconds, 'localhost');
  const window = scavenges(readFileSync(trace, 'utf8')).slice(before);
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
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
