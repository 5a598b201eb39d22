// Issue 12's comparison, measured the way it was set: the bare grpc-js baseline and `trousseau serve`
// (embedded default, local provider) kept up side by side, and their rows interleaved round by round, so
// that whatever else the shared machine does falls on both alike. Each round runs every target once per
// rpc (in an order that rotates from round to round); each Trousseau figure is divided by the baseline's
// of the same round and rpc, and the median of those ratios over the rounds is reported, with the range.
// Each authority gets a Trousseau process of its own: a process's RSS is the high-water mark of all it has
// served, so one process serving both paths would put the rewritten path's buffers into the direct row.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { median } from './measure.mjs';
import { runLoad } from './run-load.mjs';

/**
 * Runs `rounds` rounds at `concurrency` of each rpc against each target and returns one row per rpc and
 * target other than the baseline (Trousseau's two paths, then each of `references`, other servers measured
 * the same way): median ratios to the baseline (server CPU per call, calls per second) with their range,
 * and the median RSS of both.
 */
export async function measureInterleaved({
  root,
  dir,
  seconds,
  rounds,
  concurrency,
  baseline,
  trousseau,
  references = [],
}) {
  const started = [];
  try {
    const bare = await baseline.start({ dir, root });
    started.push(bare);
    const served = await trousseau.start({ dir, root });
    started.push(served);
    const rewrittenDir = join(dir, 'socket-path');
    await mkdir(rewrittenDir, { recursive: true });
    const servedRewritten = await trousseau.start({ dir: rewrittenDir, root });
    started.push(servedRewritten);
    const targets = [
      { name: baseline.name, server: bare, authority: 'localhost' },
      { name: trousseau.name, server: served, authority: 'localhost' },
      {
        name: `${trousseau.name}, socket path as :authority`,
        server: servedRewritten,
        authority: 'socket-path',
      },
    ];
    for (const reference of references) {
      const server = await reference.start({ dir, root });
      started.push(server);
      targets.push({ name: reference.name, server, authority: 'localhost' });
    }
    const samples = [];
    for (let round = 0; round < rounds; round++) {
      for (const op of ['encrypt', 'decrypt']) {
        const order = targets.map((_, index) => targets[(index + round) % targets.length]);
        for (const target of order) {
          const result = await runLoad(root, target.server, op, concurrency, seconds, target.authority);
          samples.push({ round, op, target: target.name, ...result });
          process.stderr.write(
            `round ${round + 1}/${rounds} ${op.padEnd(7)} ${target.name.padEnd(60)} ${result.opsPerSec.toFixed(0).padStart(6)} ops/s ${result.serverCpuUsPerCall.toFixed(0).padStart(5)} µs CPU/call ${result.serverRssMb.toFixed(0)} MB\n`,
          );
        }
      }
    }
    const rows = [];
    for (const op of ['encrypt', 'decrypt']) {
      for (const target of targets.slice(1)) {
        const cpu = [];
        const throughput = [];
        const rss = [];
        const baseRss = [];
        for (let round = 0; round < rounds; round++) {
          const base = samples.find((s) => s.round === round && s.op === op && s.target === baseline.name);
          const mine = samples.find((s) => s.round === round && s.op === op && s.target === target.name);
          cpu.push(mine.serverCpuUsPerCall / base.serverCpuUsPerCall);
          throughput.push(mine.opsPerSec / base.opsPerSec);
          rss.push(mine.serverRssMb);
          baseRss.push(base.serverRssMb);
        }
        rows.push({
          target: target.name,
          op,
          cpuRatio: median(cpu),
          cpuRange: [Math.min(...cpu), Math.max(...cpu)],
          throughputRatio: median(throughput),
          throughputRange: [Math.min(...throughput), Math.max(...throughput)],
          rssMb: median(rss),
          baselineRssMb: median(baseRss),
        });
      }
    }
    return { rounds, concurrency, seconds, rows, samples };
  } finally {
    for (const target of started.reverse()) await target.stop();
  }
}
