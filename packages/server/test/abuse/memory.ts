import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (options?: { type: 'major' }) => void;

/**
 * The heap and Buffer memory this process holds after a full garbage collection: what is retained, not
 * what is merely not yet collected. The server under test runs in this process.
 */
export async function retainedBytes(): Promise<number> {
  // Several rounds, with turns of the event loop between them: sockets, streams and timers that just
  // closed are released by callbacks that run after a collection, and become garbage for the next one.
  for (let round = 0; round < 6; round++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    collect({ type: 'major' });
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

export const MiB = 1024 * 1024;

/**
 * Waits until this process retains less than `limit` bytes, measuring after full collections, and
 * resolves with the last measurement; gives up after `timeoutMs`. Memory that the server frees on its
 * own schedule (grpc-js and Node's HTTP/2 release closed sessions in batches) gets the time it needs,
 * while memory it keeps fails the wait.
 */
export async function retainedBelow(limit: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let retained = await retainedBytes();
  while (retained >= limit && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    retained = await retainedBytes();
  }
  return retained;
}
