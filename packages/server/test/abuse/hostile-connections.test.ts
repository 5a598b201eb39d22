import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KmsClient } from '@trousseau/core/grpc';
import { startTestServer } from '../helpers.js';
import type { ConnectionsReport } from './hostile-client.js';
import { holdConnections } from './hostile-process.js';
import { heapCensus, MiB, retainedSince } from './memory.js';

// Connections no apiserver makes, from a client in its own process, at three times the connection cap:
// idle ones, ones that sent only the HTTP/2 preface, ones holding calls whose body never comes (half-open
// streams, no deadline), truncated HTTP/2 frames and header blocks followed by a half-close, and bytes
// that are not HTTP/2 at all. The handshake and idle timeouts and the cap itself are the lead's
// (socket.limits; packages/server/test/connection-limits.test.ts tests each alone); this is all of it at
// once, with a legitimate caller in the middle and the server's memory checked after.

const MAX_CONNECTIONS = 20;
/** Connections of each of the six kinds: 60 that would hold a slot, three times the cap. */
const PER_KIND = 20;
const STALLED_STREAMS_PER_CONNECTION = 100;

describe('abuse: hostile connections at the cap', () => {
  it(
    'closes the broken ones, keeps at most the cap, answers a legitimate Status, and lets go of the memory',
    { timeout: 240_000 },
    async (t) => {
      const server = await startTestServer({ socketLimits: { maxConnections: MAX_CONNECTIONS } });
      try {
        assert.equal((await server.client.status()).healthz, 'ok');
        server.client.close();
        const before = await heapCensus();
        const held = await holdConnections(server.socket, PER_KIND, STALLED_STREAMS_PER_CONNECTION);
        const whileHeld = (await heapCensus()).bytes - before.bytes;

        // A legitimate caller, dialled the way kube-apiserver before 1.32 dials, gets its answer at the cap.
        const legitimate = new KmsClient(server.socket, { authority: server.socket, timeoutMs: 20_000 });
        try {
          assert.equal((await legitimate.status()).healthz, 'ok');
        } finally {
          legitimate.close();
        }

        const report = JSON.parse(await held.release()) as ConnectionsReport;
        t.diagnostic(
          `opened ${JSON.stringify(report.opened)}; closed by the server ${JSON.stringify(report.closedByServer)}; ${report.stalledStreams} stalled calls; retained ${(whileHeld / MiB).toFixed(1)} MiB while held`,
        );
        const closed = (kind: string): number => report.closedByServer[kind] ?? 0;
        // Broken HTTP/2 and bytes that are not HTTP/2 are closed by the server itself, every one.
        assert.equal(closed('truncated frame'), PER_KIND);
        assert.equal(closed('truncated header block'), PER_KIND);
        assert.equal(closed('garbage instead of the preface'), PER_KIND);
        // Of the 60 that hold a slot, the cap keeps at most MAX_CONNECTIONS (less the legitimate caller's).
        const holding = ['idle', 'preface only', 'stalled calls'];
        const stillOpen = holding.reduce((sum, kind) => sum + (report.opened[kind] ?? 0) - closed(kind), 0);
        assert.ok(stillOpen <= MAX_CONNECTIONS - 1, `${stillOpen} hostile connections were still open`);
        assert.equal(report.stalledStreams, PER_KIND * STALLED_STREAMS_PER_CONNECTION);

        // Once the client is gone, the server holds what it held before: within 16 MiB, and not one object
        // per connection (120) or per stalled call (2,000) left.
        const retained = await retainedSince(before, {
          maxBytes: 16 * MiB,
          maxInstances: 100,
          timeoutMs: 60_000,
        });
        assert.deepEqual(retained.grown, [], 'objects kept per connection or call');
        assert.ok(
          retained.bytes < 16 * MiB,
          `retained ${(retained.bytes / MiB).toFixed(1)} MiB more than before`,
        );
        const again = new KmsClient(server.socket);
        try {
          assert.equal((await again.status()).healthz, 'ok');
        } finally {
          again.close();
        }
      } finally {
        await server.close();
      }
    },
  );
});
