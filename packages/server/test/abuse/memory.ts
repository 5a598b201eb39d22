import { getHeapSnapshot } from 'node:v8';

export const MiB = 1024 * 1024;

interface HeapSnapshotJson {
  readonly snapshot: {
    readonly meta: { readonly node_fields: readonly string[]; readonly node_types: readonly unknown[] };
  };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

/** What a heap snapshot says this process holds. */
interface HeapCensus {
  /** The size of every reachable object, Buffer contents included. */
  readonly bytes: number;
  /** Live instances of each named class (plain objects, arrays and V8's own nodes left out). */
  readonly instances: ReadonlyMap<string, number>;
}

const UNNAMED = new Set(['Object', 'Array', '']);

/**
 * A census of what this process retains: a heap snapshot collects garbage first and lists only what is
 * reachable from the roots, with the backing store of each ArrayBuffer as a native node. The server under
 * test runs in this process. `process.memoryUsage().heapUsed` after `gc()` is no measure of this: it
 * swung by ±25 MiB between identical runs, while the snapshot's total stays within about 1 MiB.
 */
export async function heapCensus(): Promise<HeapCensus> {
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const snapshot = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HeapSnapshotJson;
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0] as readonly string[];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((field) => fields.indexOf(field));
  let bytes = 0;
  const instances = new Map<string, number>();
  for (let node = 0; node < snapshot.nodes.length; node += fields.length) {
    bytes += snapshot.nodes[node + (sizeAt ?? 0)] ?? 0;
    if (types[snapshot.nodes[node + (typeAt ?? 0)] ?? 0] !== 'object') continue;
    const name = snapshot.strings[snapshot.nodes[node + (nameAt ?? 0)] ?? 0] ?? '';
    if (UNNAMED.has(name) || name.startsWith('system /')) continue;
    instances.set(name, (instances.get(name) ?? 0) + 1);
  }
  return { bytes, instances };
}

/** Classes with at least `count` more live instances in `after` than in `before`. */
function grownBy(before: HeapCensus, after: HeapCensus, count: number): string[] {
  return [...after.instances]
    .filter(([name, live]) => live - (before.instances.get(name) ?? 0) >= count)
    .map(([name, live]) => `${name} +${live - (before.instances.get(name) ?? 0)}`);
}

/** How much more the process retains than at a census taken before. */
export interface Retention {
  readonly bytes: number;
  /** Classes that gained at least the given number of live instances, as "Name +count". */
  readonly grown: readonly string[];
}

/**
 * Takes censuses until the process retains less than `maxBytes` more than `before` and no class has
 * `maxInstances` more live instances, or `timeoutMs` passes; resolves with the last. Memory the server
 * lets go on its own schedule (sockets and sessions released by callbacks after they close, timers that
 * run out at a call's deadline) gets the time it needs; memory it keeps fails.
 */
export async function retainedSince(
  before: HeapCensus,
  limits: { maxBytes: number; maxInstances: number; timeoutMs?: number },
): Promise<Retention> {
  const deadline = Date.now() + (limits.timeoutMs ?? 30_000);
  for (;;) {
    const after = await heapCensus();
    const retention = {
      bytes: after.bytes - before.bytes,
      grown: grownBy(before, after, limits.maxInstances),
    };
    const settled = retention.bytes < limits.maxBytes && retention.grown.length === 0;
    if (settled || Date.now() >= deadline) return retention;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
