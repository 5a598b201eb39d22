// The measuring loop every load script shares: a warm-up, then `concurrency` workers calling `call`
// back to back for `seconds`; returns ops/s and latency percentiles in milliseconds.
export async function measure({ op, call, concurrency, seconds }) {
  // Warm-up: connections, JIT, keep-alive pools.
  await Promise.all(Array.from({ length: concurrency * 4 }, (_, i) => call(i)));
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
