// Issue 12's lone Vault call, measured the way its CPU goal is: every target up side by side and run round
// by round, one caller (kube-apiserver with KMS v1 decrypting a List one object after another), so that
// whatever else the shared machine does in a round falls on all of them alike. The targets: the Vault
// emulator alone (its own latency), the floor (a bare grpc-js server making one HTTP request per call:
// the hop any plugin process adds), and `trousseau serve` with Vault, batching off and on. Each round's
// p50 is compared within the round; the medians over the rounds are reported, with their range. The calls
// are made from Go (scripts/bench/load-go.mjs): grpc-go, as kube-apiserver calls, and Go's net/http for the
// emulator alone, so that no row's p50 holds a Node client's own event loop. Three more targets split the
// hop (the floor over the emulator alone): the gRPC leg alone (a grpc-js server answering at once, and the
// same answered by node:http2 without grpc-js) and the floor with a minimal HTTP client instead of
// node:http. Every server's CPU per call is read over the same windows, so Trousseau's own share shows in
// CPU as well as in latency.
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
    const each = (op, figure) => Array.from({ length: rounds }, (_, round) => figure(round, op));
    // A target's median over the rounds, and one target's figure less another's, taken within each round.
    const medianOf = (field, op, target) => median(each(op, (r) => sampleOf(r, op, target.name)[field]));
    const over = (field, op, target, base) =>
      spread(each(op, (r) => sampleOf(r, op, target.name)[field] - sampleOf(r, op, base.name)[field]));
    const rows = [];
    for (const op of ['encrypt', 'decrypt']) {
      for (const scenario of trousseau) {
        rows.push({
          target: scenario.name,
          op,
          aloneP50: medianOf('p50', op, alone),
          floorP50: medianOf('p50', op, floor),
          trousseauP50: medianOf('p50', op, scenario),
          overAlone: over('p50', op, scenario, alone),
          overFloor: over('p50', op, scenario, floor),
          hop: over('p50', op, floor, alone),
          floorCpu: medianOf('cpu', op, floor),
          trousseauCpu: medianOf('cpu', op, scenario),
          cpuOverFloor: over('cpu', op, scenario, floor),
        });
      }
    }
    const hop = ['encrypt', 'decrypt'].map((op) => ({
      op,
      aloneP50: medianOf('p50', op, alone),
      grpcLegP50: medianOf('p50', op, grpcLeg),
      http2LegP50: medianOf('p50', op, http2Leg),
      grpcJsOverHttp2: over('p50', op, grpcLeg, http2Leg),
      minimalFloorP50: medianOf('p50', op, minimalFloor),
      floorP50: medianOf('p50', op, floor),
      nodeHttpOverMinimal: over('p50', op, floor, minimalFloor),
      cpu: {
        grpcLeg: medianOf('cpu', op, grpcLeg),
        http2Leg: medianOf('cpu', op, http2Leg),
        minimalFloor: medianOf('cpu', op, minimalFloor),
        floor: medianOf('cpu', op, floor),
        trousseau: trousseau.map((scenario) => ({
          target: scenario.name,
          cpu: medianOf('cpu', op, scenario),
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
