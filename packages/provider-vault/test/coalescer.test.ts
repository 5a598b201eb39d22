import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequestScope, isTrousseauError, silentLogger } from '@trousseau/core';
import { testRequestContext } from '@trousseau/testing';
import { Coalescer, type PendingItem } from '../src/coalescer.js';
import { eventually } from './helpers.js';

/** A coalescer whose requests the test answers by hand. */
function harness(options: { enabled?: boolean; maxBatchSize?: number } = {}) {
  const sent: { items: readonly PendingItem<string>[]; answer: () => void }[] = [];
  const coalescer = new Coalescer<string>({
    enabled: options.enabled ?? true,
    maxBatchSize: options.maxBatchSize ?? 4,
    what: 'test op',
    send: (items) =>
      new Promise<void>((resolve) => {
        sent.push({
          items,
          answer: () => {
            for (const item of items) item.resolve(`answer:${item.input}`);
            resolve();
          },
        });
      }),
  });
  return { coalescer, sent };
}

describe('coalescer', () => {
  it('sends a lone call at once, alone', async () => {
    const { coalescer, sent } = harness();
    const result = coalescer.submit('a', testRequestContext());
    assert.equal(sent.length, 1, 'sent synchronously, without waiting for company');
    assert.deepEqual(
      sent[0]?.items.map((item) => item.input),
      ['a'],
    );
    sent[0]?.answer();
    assert.equal(await result, 'answer:a');
  });

  it('queues calls while one is in flight and sends them as bounded batches when the turn ends', async () => {
    const { coalescer, sent } = harness({ maxBatchSize: 4 });
    const first = coalescer.submit('first', testRequestContext());
    const rest = ['b', 'c', 'd', 'e', 'f', 'g'].map((input) => coalescer.submit(input, testRequestContext()));
    // A full batch of 4 goes out at once; the 2 others go when this turn of the event loop ends, while
    // the first request is still unanswered: bursts of callers overlap instead of moving in lock-step.
    assert.equal(sent.length, 2);
    assert.deepEqual(
      sent[1]?.items.map((item) => item.input),
      ['b', 'c', 'd', 'e'],
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sent.length, 3, 'the queued calls did not wait for the first request to finish');
    assert.deepEqual(
      sent[2]?.items.map((item) => item.input),
      ['f', 'g'],
    );
    for (const request of sent) request.answer();
    assert.equal(await first, 'answer:first');
    assert.deepEqual(
      await Promise.all(rest),
      ['b', 'c', 'd', 'e', 'f', 'g'].map((input) => `answer:${input}`),
    );
  });

  it('keeps at most 16 requests in flight; later calls wait for one to finish', async () => {
    const { coalescer, sent } = harness({ maxBatchSize: 64 });
    const calls: Promise<string>[] = [];
    for (let turn = 0; turn < 20; turn += 1) {
      calls.push(coalescer.submit(`c${turn}`, testRequestContext())); // one caller per turn of the loop
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(sent.length, 16, 'sixteen requests in flight, no more');
    sent[0]?.answer();
    await calls[0];
    await eventually(() => sent.length === 17);
    assert.deepEqual(
      sent[16]?.items.map((item) => item.input),
      ['c16', 'c17', 'c18', 'c19'],
      'the four that waited go out together when a request finishes',
    );
    for (const request of sent) request.answer();
    assert.equal((await Promise.all(calls)).length, 20);
  });

  it('sends every call alone when disabled', () => {
    const { coalescer, sent } = harness({ enabled: false });
    for (const input of ['a', 'b', 'c'])
      void coalescer.submit(input, testRequestContext()).catch(() => undefined);
    assert.equal(sent.length, 3);
    assert.ok(sent.every((request) => request.items.length === 1));
    coalescer.close();
    for (const request of sent) request.answer();
  });

  it('drops a queued call whose caller gave up, with its reason', async () => {
    const { coalescer, sent } = harness();
    void coalescer.submit('first', testRequestContext()).catch(() => undefined);
    const scope = createRequestScope({ deadline: Date.now() + 60_000, logger: silentLogger });
    const cancelled = coalescer.submit('cancelled', scope.context);
    scope.cancel('client went away');
    await assert.rejects(
      cancelled,
      (error: unknown) => isTrousseauError(error) && error.code === 'TROUSSEAU_ERR_CANCELLED',
    );
    sent[0]?.answer();
    assert.equal(sent.length, 1, 'nothing left to send');
    scope.dispose();
  });

  it('does not hold queued calls behind a straggler', async () => {
    const { coalescer, sent } = harness();
    void coalescer.submit('stuck', testRequestContext()).catch(() => undefined);
    const queued = coalescer.submit('next', testRequestContext());
    assert.equal(sent.length, 1);
    await eventually(() => sent.length === 2);
    sent[1]?.answer();
    assert.equal(await queued, 'answer:next');
    sent[0]?.answer();
  });
});
