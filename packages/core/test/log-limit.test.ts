import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LogRateLimit, truncateForLog } from '../src/log-limit.js';

describe('log limits', () => {
  it('lets a kind of line through once per interval and counts what it held back', () => {
    let now = 1_000;
    const limit = new LogRateLimit({ intervalMs: 10_000, clock: { now: () => now } });
    assert.deepEqual(limit.admit('decrypt|CODE'), { suppressed: 0 });
    for (let i = 0; i < 1_999; i++) assert.equal(limit.admit('decrypt|CODE'), undefined);
    assert.deepEqual(limit.admit('encrypt|CODE'), { suppressed: 0 }, 'another kind has its own budget');
    now += 9_999;
    assert.equal(limit.admit('decrypt|CODE'), undefined);
    now += 1;
    assert.deepEqual(limit.admit('decrypt|CODE'), { suppressed: 2_000 }, 'the next line carries the count');
    assert.equal(limit.admit('decrypt|CODE'), undefined);
  });

  it('forgets kinds beyond its bound instead of growing', () => {
    const limit = new LogRateLimit({ intervalMs: 10_000, clock: { now: () => 0 } });
    for (let i = 0; i < 10_000; i++) limit.admit(`kind-${i}`);
    // Only the last 256 or fewer kinds are remembered: an old one logs again.
    assert.deepEqual(limit.admit('kind-0'), { suppressed: 0 });
  });

  it("cuts a caller's value to what a log line may quote, saying how long it was", () => {
    assert.equal(
      truncateForLog('0f2b7a4e-2d4e-4c1e-9a55-6f1c2a9d3b71'),
      '0f2b7a4e-2d4e-4c1e-9a55-6f1c2a9d3b71',
    );
    const long = truncateForLog('u'.repeat(1024 * 1024));
    assert.equal(long, `${'u'.repeat(64)}…(1048576 chars)`);
    assert.equal(truncateForLog('abcdef', 3), 'abc…(6 chars)');
  });

  it('never cuts a character in half: a surrogate pair stays whole or goes', () => {
    // 63 ASCII characters, then an emoji (two UTF-16 units): the 64th unit is its first half.
    const cut = truncateForLog(`${'v'.repeat(63)}😀 and more`);
    assert.equal(cut, `${'v'.repeat(63)}…(74 chars)`);
    assert.equal(Buffer.from(cut, 'utf8').toString('utf8'), cut, 'no lone surrogate');
    assert.equal(truncateForLog('ab😀cd', 4), 'ab😀…(6 chars)');
  });
});
