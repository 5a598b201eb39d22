// Issue 12's lone Vault call, measured the way its CPU goal is: every target up side by side and run round
// by round, one caller (kube-apiserver with KMS v1 decrypting a List one object after another), so that
// whatever else the shared machine does in a round falls on all of them alike. The targets: the Vault
// emulator alone (its own latency), the floor (a bare grpc-js server making one HTTP request per call:
// the hop any plugin process adds), and `trousseau serve` with Vault, batching off and on. Each round's
// p50 is compared within the round; the medians over the rounds are reported, with their range. The calls
// are made from Go (scripts/bench/load-go.mjs): grpc-go, as kube-apiserver calls, and Go's net/http for the
// emulator alone, so that no row's p50 holds a Node client's own event loop. Two more targets split the
// hop (the floor over the emulator alone): the gRPC leg alone (a grpc-js server answering at once, and the
// same answered by node:http2 without grpc-js) and the floor with a minimal HTTP client instead of node:http. Every server's CPU per call is read over the same
// windows, so Trousseau's own share shows in CPU as well as in latency.
import { median } from './measure.mjs';
import { runLoad } from './run-load.mjs';

const GO_LOAD = 'scripts/bench/load-go.mjs';

/** The median of `values` and its range. */
function spread(values) {
  return { median: median(values), range: [Math.min(...values), Math.max(...values)] };
}

/**
 * Runs `rounds` rounds at concurrency 1 of each rpc against `alone`, `floor`, each of `trousseau` and the
 * hop's parts (`grpcLeg`, `http2Leg`, `minimalFloor`), all scenarios of scenarios.mjs, and returns:
 * - `rows`, per rpc and Trousseau target: the median p50 of each target, what Trousseau adds over the
 *   emulator alone (the measure), over the floor (Trousseau's own share, in ms and in server CPU
 *   µs per call), and what the floor adds over the emulator alone (the hop);
 * - `hop`, per rpc: the p50 of the gRPC leg alone (on grpc-js and on node:http2) and of both floors, what
 *   node:http costs over the minimal client and what grpc-js costs over node:http2, and the server CPU per
 *   call of both gRPC legs, both floors and each Trousseau target.
 * Differences are medians of per-round differences.
 */
export async function measureLoneCall({
  root,
  dir,
  seconds,
  rounds,
  alone,
  floor,
  trousseau,
  grpcLeg,
  http2Leg,
  minimalFloor,
}) {
  const started = [];
  try {
    const targets = [];
    for (const scenario of [alone, floor, ...trousseau, grpcLeg, http2Leg, minimalFloor]) {
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
            cpu: result.serverCpuUsPerCall,
            errors: result.errors,
            client: result.client,
          });
          process.stderr.write(
            `round ${round + 1}/${rounds} ${op.padEnd(7)} ${target.name.padEnd(84)} p50 ${result.p50.toFixed(2)} ms\n`,
          );
        }
      }
    }
    const sampleOf = (round, op, name) =>
      samples.find((s) => s.round === round && s.op === op && s.target === name);
    const p50Of = (round, op, name) => sampleOf(round, op, name).p50;
    const cpuOf = (round, op, name) => sampleOf(round, op, name).cpu;
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
          floorCpu: median(each(op, (r) => cpuOf(r, op, floor.name))),
          trousseauCpu: median(each(op, (r) => cpuOf(r, op, scenario.name))),
          cpuOverFloor: spread(each(op, (r) => cpuOf(r, op, scenario.name) - cpuOf(r, op, floor.name))),
        });
      }
    }
    const hop = ['encrypt', 'decrypt'].map((op) => ({
      op,
      aloneP50: median(each(op, (r) => p50Of(r, op, alone.name))),
      grpcLegP50: median(each(op, (r) => p50Of(r, op, grpcLeg.name))),
      http2LegP50: median(each(op, (r) => p50Of(r, op, http2Leg.name))),
      grpcJsOverHttp2: spread(each(op, (r) => p50Of(r, op, grpcLeg.name) - p50Of(r, op, http2Leg.name))),
      minimalFloorP50: median(each(op, (r) => p50Of(r, op, minimalFloor.name))),
      floorP50: median(each(op, (r) => p50Of(r, op, floor.name))),
      nodeHttpOverMinimal: spread(
        each(op, (r) => p50Of(r, op, floor.name) - p50Of(r, op, minimalFloor.name)),
      ),
      cpu: {
        grpcLeg: median(each(op, (r) => cpuOf(r, op, grpcLeg.name))),
        http2Leg: median(each(op, (r) => cpuOf(r, op, http2Leg.name))),
        minimalFloor: median(each(op, (r) => cpuOf(r, op, minimalFloor.name))),
        floor: median(each(op, (r) => cpuOf(r, op, floor.name))),
        trousseau: trousseau.map((scenario) => ({
          target: scenario.name,
          cpu: median(each(op, (r) => cpuOf(r, op, scenario.name))),
        })),
      },
    }));
    const errors = samples.reduce((sum, sample) => sum + sample.errors, 0);
    const clients = [...new Set(samples.map((sample) => sample.client))];
    return { rounds, seconds, rows, hop, errors, clients, samples };
  } finally {
    for (const server of started.reverse()) await server.stop();
  }
}
