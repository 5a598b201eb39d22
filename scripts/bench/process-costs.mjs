// Costs of the process itself, not of calls: how long `trousseau serve` (embedded default) takes from
// spawn to serving its socket (then checked with a real Status), its resident memory once idle (2 s after
// ready, and after 30 s, by when V8's memory reducer has shrunk the heap an idle process no longer needs),
// and how long `trousseau version` takes.
// Each is the median of several runs, so a single slow start on a shared machine does not decide it.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmsClient } from '@trousseau/core/grpc';
import { cpuSeconds, median, rssMegabytes } from './measure.mjs';

/** How long the server idles before its settled RSS is read. */
const SETTLED_IDLE_MS = 30_000;

function exited(child) {
  return new Promise((resolve) => child.once('close', resolve));
}

/** Spawn to the log line that says the socket is served, then idle RSS after `idleMs`. */
async function startOnce(bin, idleMs) {
  const dir = await mkdtemp(join(tmpdir(), 'trousseau-start-'));
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'serve', '--log-level', 'info'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const readyMs = await new Promise((resolve, reject) => {
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
        if (output.includes('trousseau is serving')) resolve(performance.now() - started);
      });
      child.once('close', (code) => reject(new Error(`serve exited ${code} before it was ready`)));
    });
    // CPU time to ready does not grow with the machine's other load the way wall time does.
    const readyCpuMs = cpuSeconds(child.pid) * 1000;
    // A real call, so the figure is of a server that answers, not only one that logged.
    const client = new KmsClient(join(dir, '.trousseau', 'kms.sock'), { timeoutMs: 30_000 });
    await client.status();
    client.close();
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    return { readyMs, readyCpuMs, idleRssMb: rssMegabytes(child.pid) };
  } finally {
    child.kill('SIGTERM');
    await exited(child);
    await rm(dir, { recursive: true, force: true });
  }
}

async function versionOnce(bin) {
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'version'], { stdio: 'ignore' });
  await exited(child);
  return performance.now() - started;
}

async function bareNodeOnce() {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await exited(child);
  return performance.now() - started;
}

export async function measureProcessCosts(root, runs = 5) {
  const bin = join(root, 'packages/server/dist/bundle/trousseau.cjs');
  const starts = [];
  const versions = [];
  const bare = [];
  for (let run = 0; run < runs; run++) {
    starts.push(await startOnce(bin, 2_000));
    versions.push(await versionOnce(bin));
    bare.push(await bareNodeOnce());
  }
  // V8 shrinks the heap of a process that has gone idle (its memory reducer) some seconds after the last
  // allocation; what a plugin holds between calls is that figure. One start, as it takes 30 s.
  const settled = await startOnce(bin, SETTLED_IDLE_MS);
  return {
    runs,
    startToReadyMs: median(starts.map((s) => s.readyMs)),
    startCpuMs: median(starts.map((s) => s.readyCpuMs)),
    idleRssMb: median(starts.map((s) => s.idleRssMb)),
    settledIdleRssMb: settled.idleRssMb,
    versionMs: median(versions),
    bareNodeMs: median(bare),
  };
}
