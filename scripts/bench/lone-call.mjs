// Issue 12's lone Vault call, measured the way its CPU goal is: every target up side by side and run round
// by round, one caller (kube-apiserver with KMS v1 decrypting a List one object after another), so that
// whatever else the shared machine does in a round falls on all of them alike. The targets: the Vault
// emulator alone (its own latency), the floor (a bare grpc-js server making one HTTP request per call:
// the hop any plugin process adds), and `trousseau serve` with Vault, batching off and on. Each round's
// p50 is compared within the round; the medians over the rounds are reported, with their range. The calls
// are made from Go (scripts/bench/load-go.mjs): grpc-go, as kube-apiserver calls, and Go's net/http for the
// emulator alone, so that no row's p50 holds a Node client's own event loop.
import { median } from './measure.mjs';
import { runLoad } from './run-load.mjs';

const GO_LOAD = 'scripts/bench/load-go.mjs';

/** The median of `values` and its range. */
function spread(values) {
  return { median: median(values), range: [Math.min(...values), Math.max(...values)] };
}

/**
 * Runs `rounds` rounds at concurrency 1 of each rpc against `alone`, `floor` and each of `trousseau` (all
 * scenarios of scenarios.mjs) and returns, per rpc and Trousseau target: the median p50 of each target, what
 * Trousseau adds over the emulator alone (the measure), over the floor (Trousseau's own share), and
 * what the floor adds over the emulator alone (the hop), each a median of per-round differences in ms.
 */
export async function measureLoneCall({ root, dir, seconds, rounds, alone, floor, trousseau }) {
  const started = [];
  try {
    const targets = [];
    for (const scenario of [alone, floor, ...trousseau]) {
      const server = await scenario.start({ dir, root });
      started.push(server);
      targets.push({ name: scenario.name, server });
    }
    const samples = [];
    for (let round = 0; round < rounds; round++) {
      for (const op of ['encrypt', 'decrypt']) {
        const order = targets.map((_, index) => targets[(index + round) % targets.length]);
        for (const target of order) {
          const server = { ...target.server, loadScript: GO_LOAD };
          const result = await runLoad(root, server, op, 1, seconds, 'localhost');
          samples.push({
            round,
            op,
            target: target.name,
            p50: result.p50,
            errors: result.errors,
            client: result.client,
          });
          process.stderr.write(
            `round ${round + 1}/${rounds} ${op.padEnd(7)} ${target.name.padEnd(84)} p50 ${result.p50.toFixed(2)} ms\n`,
          );
        }
      }
    }
    const p50Of = (round, op, name) =>
      samples.find((s) => s.round === round && s.op === op && s.target === name).p50;
    const each = (op, figure) => Array.from({ length: rounds }, (_, round) => figure(round, op));
    const rows = [];
    for (const op of ['encrypt', 'decrypt']) {
      for (const scenario of trousseau) {
        rows.push({
          target: scenario.name,
          op,
          aloneP50: median(each(op, (r) => p50Of(r, op, alone.name))),
          floorP50: median(each(op, (r) => p50Of(r, op, floor.name))),
          trousseauP50: median(each(op, (r) => p50Of(r, op, scenario.name))),
          overAlone: spread(each(op, (r) => p50Of(r, op, scenario.name) - p50Of(r, op, alone.name))),
          overFloor: spread(each(op, (r) => p50Of(r, op, scenario.name) - p50Of(r, op, floor.name))),
          hop: spread(each(op, (r) => p50Of(r, op, floor.name) - p50Of(r, op, alone.name))),
        });
      }
    }
    const errors = samples.reduce((sum, sample) => sum + sample.errors, 0);
    const clients = [...new Set(samples.map((sample) => sample.client))];
    return { rounds, seconds, rows, errors, clients, samples };
  } finally {
    for (const server of started.reverse()) await server.stop();
  }
}
