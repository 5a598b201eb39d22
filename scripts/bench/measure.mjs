// The measuring loop every load script shares: a warm-up, then `concurrency` workers calling `call`
// back to back for `seconds`; returns ops/s and latency percentiles in milliseconds.
async function runWorkers(call, concurrency, milliseconds) {
  const until = performance.now() + milliseconds;
  let i = 0;
  const worker = async () => {
    while (performance.now() < until) await call(i++).catch(() => undefined);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

export async function measure({ op, call, concurrency, seconds }) {
  // Warm-up at the same concurrency for a second: connections, keep-alive pools, and the JIT of every
  // process on the path (the first rows of a run would otherwise measure cold code).
  await runWorkers(call, concurrency, 1_000);
  const latencies = [];
  let errors = 0;
  let count = 0;
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
  };
}
