// The measuring loop every load script shares: a warm-up, then `concurrency` workers calling `call`
// back to back for `seconds`; returns ops/s and latency percentiles in milliseconds and, given the server
// process's pid, the server's CPU time per call and its resident memory, read from /proc over exactly the
// measured window.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux this runs on. */
const TICKS_PER_SECOND = 100;

/** The process's user + system CPU time in seconds, from /proc/<pid>/stat (fields 14 and 15). */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The process's resident set size in MB, from /proc/<pid>/status. */
export function rssMegabytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Warm-up: at least `minMs` and at least `minCalls` calls (but no more than `maxMs`). A time alone is not
 * enough: V8 optimises a function after enough calls, not after enough time, so at concurrency 1 against a
 * slow server a one-second warm-up measured code still being compiled, and the first row of each fresh
 * server (Encrypt, concurrency 1) came out far slower than the same row measured later.
 */
async function warmUp(call, concurrency, { minMs, minCalls, maxMs }) {
  const started = performance.now();
  let i = 0;
  const warming = () => {
    const elapsed = performance.now() - started;
    return elapsed < maxMs && (elapsed < minMs || i < minCalls);
  };
  const worker = async () => {
    while (warming()) await call(i++).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export async function measure({ op, call, concurrency, seconds, serverPid }) {
  // Warm-up at the same concurrency: connections, keep-alive pools, and the JIT of every process on the
  // path (the first rows of a run would otherwise measure cold code).
  await warmUp(call, concurrency, { minMs: 1_000, minCalls: 2_000, maxMs: 15_000 });
  const latencies = [];
  let errors = 0;
  let count = 0;
  const cpuBefore = serverPid === undefined ? NaN : cpuSeconds(serverPid);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  async function worker() {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await call(count++);
        latencies.push(performance.now() - t0);
      } catch {
        errors += 1;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const serverCpu = serverPid === undefined ? NaN : cpuSeconds(serverPid) - cpuBefore;
  const serverRssMb = serverPid === undefined ? NaN : rssMegabytes(serverPid);
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    op,
    concurrency,
    ops: latencies.length,
    errors,
    opsPerSec: latencies.length / elapsed,
    p50: pick(0.5),
    p99: pick(0.99),
    serverCpuUsPerCall: (serverCpu / Math.max(1, latencies.length)) * 1e6,
    serverRssMb,
  };
}
