import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  createRequestScope,
  isTrousseauError,
  isValidKeyId,
  silentLogger,
  type EncryptResult,
  type ErrorCode,
  type KeyProvider,
  type ProviderStatus,
  type RequestContext,
} from '@trousseau/core';
import { testRequestContext } from './request-context.js';

/**
 * What a provider's test hands to the conformance suite: the provider under test and hooks on its
 * backend. `breakBackend`/`restoreBackend` are required; the others are optional only for a backend that
 * genuinely cannot offer them, and every check that needs a missing hook is reported as skipped, with the
 * hook it needs, never passed. Built-in providers implement every hook.
 */
export interface ConformanceSubject {
  readonly provider: KeyProvider;
  /**
   * Makes the backend fail as in an outage (stop answering, seal Vault, corrupt the key file). Calls
   * that need the backend must then fail with a server-fault, retryable code.
   */
  breakBackend(): Promise<void>;
  /** Undoes {@link breakBackend} and {@link holdBackend}; the backend answers normally again. */
  restoreBackend(): Promise<void>;
  /**
   * Rotates the key in the backend the way an operator would (a new key version, new key material, a new
   * key in the ring). The provider may notice it at its next `status()`.
   */
  readonly rotateKey?: () => Promise<void>;
  /**
   * From now on the backend receives requests but does not answer them (a hung server), until
   * {@link releaseBackend} or {@link restoreBackend}. Held requests are counted by {@link backendRequests}.
   */
  readonly holdBackend?: () => Promise<void>;
  /** Lets held and later requests on, to meet whatever state the backend is in (broken or not). */
  readonly releaseBackend?: () => Promise<void>;
  /**
   * Backend requests started so far, counted at the backend (the emulator's count of requests received,
   * the reads of a key file). It must count at least while the backend is held and until it is restored.
   * Requests the provider makes on its own schedule (a periodic key refresh, a token renewal) are counted
   * too: give them a long interval in the subject, or the suite takes them for requests of aborted calls.
   */
  readonly backendRequests?: () => number;
  /**
   * True when the provider holds its keys in memory and keeps encrypting and decrypting while its backend
   * is down (a key file read at start). The outage check then requires those calls to keep answering
   * correctly instead of failing, and the in-flight abort checks exercise only the calls that reach the
   * backend.
   */
  readonly servesWhileBackendDown?: boolean;
  /** Releases what the subject started (emulators, temp dirs). The suite closes the provider itself. */
  cleanup?(): Promise<void>;
}

export interface ConformanceOptions {
  /** Size of the plaintexts used; kube-apiserver sends 32-byte keys. */
  readonly plaintextBytes?: number;
  /** Deadline of each ordinary call (default 15 s: generous, so a loaded machine does not fail it). */
  readonly timeoutMs?: number;
  /** Calls in flight at once in the concurrency check (default 16). */
  readonly concurrency?: number;
  /** Deadline of each call of the concurrency check (default 30 s). */
  readonly concurrencyTimeoutMs?: number;
  /** The deadline given to a call in the deadline check (default 750 ms). */
  readonly abortDeadlineMs?: number;
  /**
   * How long after its abort (or deadline) a call may take to settle (default 5 s). The backend holds the
   * request far longer, so a call that waits for the backend instead of its signal fails; a loaded machine
   * does not.
   */
  readonly settleGraceMs?: number;
  /**
   * How long after an aborted call the suite watches for backend requests the provider should not start
   * (default 500 ms: several retry backoffs). A longer window catches slower retries; no correct provider
   * can fail it, however long.
   */
  readonly quietWindowMs?: number;
  /** The most the suite waits for a condition (a rotation seen, a held request arriving, recovery). */
  readonly waitMs?: number;
}

type Operation = 'encrypt' | 'decrypt' | 'status';
const OPERATIONS: readonly Operation[] = ['encrypt', 'decrypt', 'status'];

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

function outcomeOf<T>(work: Promise<T>): Promise<Outcome<T>> {
  return work.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** Settles with `work`, or fails the test with `message` when it takes more than `ms`. */
async function within<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      work,
      delay(ms, undefined, { signal: timer.signal }).then(() => assert.fail(message)),
    ]);
  } finally {
    timer.abort();
  }
}

/** Polls `check` until it holds; fails with `what` after `ms`. Waiting for a condition, never a sleep. */
async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  pollMs = 10,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`gave up after ${ms} ms waiting for ${what}`);
    await delay(pollMs);
  }
}

function describeError(error: unknown): string {
  if (isTrousseauError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** A short description of what a call answered (a status in full, bytes by their length). */
function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'object' && value !== null && 'ciphertext' in value) {
    const { ciphertext, ...rest } = value as EncryptResult;
    return JSON.stringify({ ...rest, ciphertext: `${ciphertext.length} bytes` });
  }
  return JSON.stringify(value);
}

function assertCode(outcome: Outcome<unknown>, code: ErrorCode, what: string): void {
  if (outcome.ok) assert.fail(`${what}: expected ${code}, but it answered ${describeValue(outcome.value)}`);
  const error = outcome.error;
  assert.ok(
    isTrousseauError(error),
    `${what}: expected a TrousseauError ${code}, got ${describeError(error)}`,
  );
  assert.equal(error.code, code, `${what}: expected ${code}, got ${describeError(error)}`);
}

async function expectFault(work: Promise<unknown>, fault: 'client' | 'server', what: string): Promise<void> {
  const outcome = await outcomeOf(work);
  if (outcome.ok) assert.fail(`${what}: expected a ${fault} fault, but the call succeeded`);
  const error = outcome.error;
  assert.ok(isTrousseauError(error), `${what}: expected a TrousseauError, got ${describeError(error)}`);
  assert.equal(error.fault, fault, `${what}: expected a ${fault} fault, got ${describeError(error)}`);
}

/**
 * A call that was aborted settled with `code`. Status may instead answer unhealthy (core treats both
 * alike), but must not claim the key is gone: that would stop the apiserver's writes over a timeout.
 */
function assertAborted(operation: Operation, outcome: Outcome<unknown>, code: ErrorCode, what: string): void {
  if (operation === 'status' && outcome.ok) {
    const status = outcome.value as ProviderStatus;
    assert.equal(status.healthy, false, `${what}: status reported healthy although its check was aborted`);
    assert.notEqual(
      !status.healthy && (status.code === 'TROUSSEAU_ERR_PROVIDER_KEY_GONE' || status.keyUnusable === true),
      true,
      `${what}: an aborted check must not report the key gone`,
    );
    return;
  }
  assertCode(outcome, code, what);
}

/** Why a check that needs hooks the subject lacks is skipped; the test runner shows this text. */
function missingHooks(subject: ConformanceSubject, hooks: readonly (keyof ConformanceSubject)[]): string {
  const missing = hooks.filter((hook) => subject[hook] === undefined);
  return missing.length === 0
    ? ''
    : `provider conformance: the subject has no ${missing.join('/')} hook, so this rule of the provider contract is NOT checked`;
}

interface HoldHooks {
  hold(): Promise<void>;
  release(): Promise<void>;
  requests(): number;
}

function holdHooks(subject: ConformanceSubject): HoldHooks | undefined {
  const { holdBackend, releaseBackend, backendRequests } = subject;
  if (holdBackend === undefined || releaseBackend === undefined || backendRequests === undefined)
    return undefined;
  return {
    hold: holdBackend,
    release: releaseBackend,
    requests: backendRequests,
  };
}

/**
 * Lets a request the provider had already written before its call was aborted reach the backend and be
 * counted, so it is not mistaken for one started afterwards (several turns of the event loop).
 */
const IN_TRANSIT_MS = 100;

/**
 * The contract every provider must meet, as node:test cases over the subject `makeSubject` builds: round
 * trip, tampered and truncated ciphertexts rejected as client faults, a stable bounded key id that
 * matches encrypt's, rotation (a new key id that never goes back, older ciphertexts still readable), an
 * outage (retryable server faults, status unhealthy with the last good key id, recovery), calls aborted
 * or past their deadline while the backend hangs (prompt, with the matching code, no backend request
 * afterwards), concurrent calls, and close (idempotent; every later call fails shutting down).
 */
export function runProviderConformance(
  label: string,
  makeSubject: () => Promise<ConformanceSubject>,
  options: ConformanceOptions = {},
): void {
  const size = options.plaintextBytes ?? 32;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const concurrency = options.concurrency ?? 16;
  const concurrencyTimeoutMs = options.concurrencyTimeoutMs ?? 30_000;
  const abortDeadlineMs = options.abortDeadlineMs ?? 750;
  const settleGraceMs = options.settleGraceMs ?? 5_000;
  const quietWindowMs = options.quietWindowMs ?? 500;
  const waitMs = options.waitMs ?? 20_000;
  const ctx = (ms = timeoutMs): RequestContext => testRequestContext(ms);

  describe(`provider conformance: ${label}`, () => {
    let subject: ConformanceSubject;
    before(async () => {
      subject = await makeSubject();
    });
    after(async () => {
      await subject.provider.close();
      await subject.cleanup?.();
    });

    const seal = (plaintext: Uint8Array): Promise<EncryptResult> =>
      subject.provider.encrypt(plaintext, ctx());
    const open = (result: EncryptResult, request: RequestContext = ctx()): Promise<Uint8Array> =>
      subject.provider.decrypt({ ciphertext: result.ciphertext, keyRef: result.keyRef ?? '' }, request);
    const assertOpens = async (result: EncryptResult, plaintext: Uint8Array, what: string): Promise<void> => {
      assert.deepEqual(Buffer.from(await open(result)), Buffer.from(plaintext), what);
    };
    const healthyKeyId = async (what: string): Promise<string> => {
      const status = await subject.provider.status(ctx());
      assert.ok(status.healthy, `${what}: expected healthy, got ${JSON.stringify(status)}`);
      return status.keyId;
    };
    /** Polls status until healthy (a real check each time), e.g. after the backend came back. */
    const untilHealthy = async (what: string): Promise<string> => {
      let keyId = '';
      let last: unknown;
      await waitFor(
        async () => {
          const status = await outcomeOf(subject.provider.status(ctx()));
          last = status.ok ? status.value : describeError(status.error);
          if (status.ok && status.value.healthy) keyId = status.value.keyId;
          return keyId !== '';
        },
        waitMs,
        `${what} (last status: ${JSON.stringify(last)})`,
        50,
      );
      return keyId;
    };
    const invoke = (
      operation: Operation,
      sealed: EncryptResult,
      request: RequestContext,
    ): Promise<unknown> => {
      switch (operation) {
        case 'encrypt':
          return subject.provider.encrypt(randomBytes(size), request);
        case 'decrypt':
          return open(sealed, request);
        case 'status':
          return subject.provider.status(request);
      }
    };

    it('round-trips a data key, with a fresh ciphertext each time', async () => {
      const plaintext = randomBytes(size);
      const first = await seal(plaintext);
      const second = await seal(plaintext);
      assert.ok(first.ciphertext.length > 0);
      assert.notDeepEqual(Buffer.from(first.ciphertext), Buffer.from(second.ciphertext));
      await assertOpens(first, plaintext, 'first ciphertext');
      await assertOpens(second, plaintext, 'second ciphertext');
    });

    it('reports a stable, bounded key id equal to the one encrypt returns', async () => {
      const keyId = await healthyKeyId('status');
      assert.ok(isValidKeyId(keyId), `key id must be 1..1024 bytes: ${keyId}`);
      assert.equal(await healthyKeyId('status again'), keyId, 'key id changed without a key change');
      const result = await seal(randomBytes(size));
      assert.equal(result.keyId, keyId, 'encrypt must return the key id status reports');
    });

    it('rejects a tampered ciphertext as a client fault', async () => {
      const result = await seal(randomBytes(size));
      const tampered = Buffer.from(result.ciphertext);
      const middle = Math.floor(tampered.length / 2);
      tampered[middle] = (tampered[middle] ?? 0) ^ 0x01;
      await expectFault(open({ ...result, ciphertext: tampered }), 'client', 'tampered');
    });

    it('rejects a truncated ciphertext as a client fault', async () => {
      const result = await seal(randomBytes(size));
      const truncated = Buffer.from(result.ciphertext).subarray(
        0,
        Math.max(1, Math.floor(result.ciphertext.length / 3)),
      );
      await expectFault(open({ ...result, ciphertext: truncated }), 'client', 'truncated');
    });

    it('rotates: a new key id each time that never goes back, and every older ciphertext still decrypts', async (t) => {
      const rotateKey = subject.rotateKey;
      if (rotateKey === undefined) {
        t.skip(missingHooks(subject, ['rotateKey']));
        return;
      }
      const seen = [await healthyKeyId('before rotation')];
      const plaintext = randomBytes(size);
      const sealed = [await seal(plaintext)];
      assert.equal(sealed[0]?.keyId, seen[0]);
      for (let round = 1; round <= 2; round++) {
        await rotateKey();
        const previous = seen.at(-1);
        let current = '';
        await waitFor(
          async () => {
            const keyId = await healthyKeyId(`after rotation ${round}`);
            assert.ok(
              keyId === previous || !seen.includes(keyId),
              `rotation ${round}: the key id went back to an earlier value ${keyId}`,
            );
            current = keyId === previous ? '' : keyId;
            return current !== '';
          },
          waitMs,
          `status to report a new key id after rotation ${round}`,
          50,
        );
        assert.ok(isValidKeyId(current), `key id must be 1..1024 bytes: ${current}`);
        seen.push(current);
        const fresh = await seal(plaintext);
        assert.equal(fresh.keyId, current, `rotation ${round}: encrypt must return the new key id`);
        sealed.push(fresh);
        for (const [index, result] of sealed.entries()) {
          await assertOpens(result, plaintext, `rotation ${round}: ciphertext of key generation ${index}`);
        }
      }
      for (let check = 0; check < 3; check++) {
        assert.equal(await healthyKeyId('after the rotations'), seen.at(-1), 'the key id must not move back');
      }
    });

    it('in an outage: calls fail with a retryable server fault, status is unhealthy with the last good key id, and it recovers', async () => {
      const lastGood = await healthyKeyId('before the outage');
      const plaintext = randomBytes(size);
      const sealed = await seal(plaintext);
      await subject.breakBackend();
      try {
        const down = await outcomeOf(subject.provider.status(ctx()));
        if (!down.ok) {
          assert.fail(
            `status must answer unhealthy while the backend is down, not throw: ${describeError(down.error)}`,
          );
        }
        const status = down.value;
        assert.equal(status.healthy, false, 'status must report the failing backend');
        assert.ok(!status.healthy && status.reason.length > 0, 'an unhealthy status must say why');
        assert.equal(status.keyId, lastGood, 'status must keep reporting the last good key id');
        if (subject.servesWhileBackendDown === true) {
          await assertOpens(await seal(plaintext), plaintext, 'encrypt from memory during the outage');
          await assertOpens(sealed, plaintext, 'decrypt from memory during the outage');
        } else {
          const calls: readonly [string, () => Promise<unknown>][] = [
            ['encrypt', () => seal(plaintext)],
            ['decrypt', () => open(sealed)],
          ];
          for (const [what, call] of calls) {
            const outcome = await outcomeOf(call());
            if (outcome.ok)
              assert.fail(`${what} succeeded with the backend down: does breakBackend break it?`);
            const error = outcome.error;
            assert.ok(
              isTrousseauError(error),
              `${what}: expected a TrousseauError, got ${describeError(error)}`,
            );
            assert.ok(
              error.fault === 'server' && error.retryable,
              `${what} during an outage must fail with a retryable server fault, got ${describeError(error)} (fault ${error.fault}, retryable ${String(error.retryable)})`,
            );
          }
        }
      } finally {
        await subject.restoreBackend();
      }
      assert.equal(await untilHealthy('recovery after the outage'), lastGood, 'the key id did not change');
      await assertOpens(await seal(plaintext), plaintext, 'round trip after recovery');
      await assertOpens(sealed, plaintext, 'ciphertext of before the outage');
    });

    it('fails a call whose signal has already aborted with TROUSSEAU_ERR_CANCELLED, starting no backend request', async (t) => {
      const hooks = holdHooks(subject);
      if (hooks === undefined) {
        t.skip(missingHooks(subject, ['holdBackend', 'releaseBackend', 'backendRequests']));
        return;
      }
      const sealed = await seal(randomBytes(size));
      // Held, so that a request the provider should not make is counted and cannot change anything.
      await hooks.hold();
      try {
        const before = hooks.requests();
        for (const operation of OPERATIONS) {
          const scope = createRequestScope({
            uid: `conformance-cancelled-${operation}`,
            deadline: Date.now() + timeoutMs,
            logger: silentLogger,
          });
          scope.cancel('conformance: cancelled before the call');
          try {
            const outcome = await within(
              outcomeOf(invoke(operation, sealed, scope.context)),
              settleGraceMs,
              `${operation} with an aborted signal did not settle within ${settleGraceMs} ms`,
            );
            assertAborted(
              operation,
              outcome,
              'TROUSSEAU_ERR_CANCELLED',
              `${operation} with an aborted signal`,
            );
          } finally {
            scope.dispose();
          }
        }
        await delay(IN_TRANSIT_MS + quietWindowMs);
        assert.equal(
          hooks.requests() - before,
          0,
          'backend requests were started for calls whose signal had already aborted',
        );
      } finally {
        await hooks.release();
        await subject.restoreBackend();
      }
      await untilHealthy('the provider after cancelled calls');
    });

    for (const how of ['cancel', 'deadline'] as const) {
      const code: ErrorCode =
        how === 'cancel' ? 'TROUSSEAU_ERR_CANCELLED' : 'TROUSSEAU_ERR_DEADLINE_EXCEEDED';
      const title =
        how === 'cancel'
          ? 'a call cancelled while its backend request hangs settles promptly with TROUSSEAU_ERR_CANCELLED; no backend request starts after it'
          : 'a call whose deadline passes while its backend request hangs settles promptly with TROUSSEAU_ERR_DEADLINE_EXCEEDED; no backend request starts after it';
      it(title, async (t: TestContext) => {
        const hooks = holdHooks(subject);
        if (hooks === undefined) {
          t.skip(missingHooks(subject, ['holdBackend', 'releaseBackend', 'backendRequests']));
          return;
        }
        const reachedBackend: Operation[] = [];
        for (const operation of OPERATIONS) {
          const sealed = await seal(randomBytes(size));
          const what = `${operation} ${how === 'cancel' ? 'cancelled' : 'past its deadline'} while the backend hangs`;
          await hooks.hold();
          const scope = createRequestScope({
            uid: `conformance-${how}-${operation}`,
            deadline: Date.now() + (how === 'cancel' ? waitMs + settleGraceMs : abortDeadlineMs),
            logger: silentLogger,
          });
          try {
            const before = hooks.requests();
            let early: Outcome<unknown> | undefined;
            const outcome = outcomeOf(invoke(operation, sealed, scope.context)).then((settled) => {
              early = settled;
              return settled;
            });
            if (how === 'cancel') {
              await waitFor(
                () => hooks.requests() > before || early !== undefined,
                waitMs,
                `${operation} to reach the held backend`,
              );
              if (early === undefined) scope.cancel('conformance: the caller went away');
            }
            const settled = await within(
              outcome,
              (how === 'cancel' ? 0 : abortDeadlineMs) + settleGraceMs,
              `${what}: did not settle within ${settleGraceMs} ms of its ${how === 'cancel' ? 'abort' : 'deadline'}`,
            );
            if (hooks.requests() === before && settled.ok) {
              // It never reached the backend: only a call the provider answers from memory may do that
              // (checked below), and then there is nothing in flight to abort.
              t.diagnostic(`${operation} answered without a backend request: nothing in flight to abort`);
            } else {
              if (hooks.requests() > before) reachedBackend.push(operation);
              assertAborted(operation, settled, code, what);
              // Requests written before the abort are counted first; then the held ones are released into
              // an outage, where a provider that retries or goes on after an abort would start another.
              await delay(IN_TRANSIT_MS);
              const afterAbort = hooks.requests();
              await subject.breakBackend();
              await hooks.release();
              await delay(quietWindowMs);
              const late: number = hooks.requests() - afterAbort;
              assert.equal(late, 0, `${what}: ${late} backend request(s) started after the call settled`);
            }
          } finally {
            scope.dispose();
            await hooks.release();
            await subject.restoreBackend();
          }
          await untilHealthy(`the provider after ${what}`);
        }
        if (how === 'cancel') {
          const expected: readonly Operation[] =
            subject.servesWhileBackendDown === true ? ['status'] : OPERATIONS;
          for (const operation of expected) {
            assert.ok(
              reachedBackend.includes(operation),
              `${operation} answered while the backend was held: does holdBackend hold every request?`,
            );
          }
        }
      });
    }

    it('serves concurrent calls, each caller getting its own answer', async () => {
      const plaintexts = Array.from({ length: concurrency }, () => randomBytes(size));
      const results = await Promise.all(
        plaintexts.map((plaintext) => subject.provider.encrypt(plaintext, ctx(concurrencyTimeoutMs))),
      );
      const opened = await Promise.all(results.map((result) => open(result, ctx(concurrencyTimeoutMs))));
      opened.forEach((plaintext, index) =>
        assert.deepEqual(Buffer.from(plaintext), plaintexts[index], `caller ${index} got another's answer`),
      );
    });

    it('closes idempotently; every call afterwards fails with TROUSSEAU_ERR_SHUTTING_DOWN', async () => {
      const fresh = await makeSubject();
      try {
        const sealed = await fresh.provider.encrypt(randomBytes(size), ctx());
        await fresh.provider.close();
        await fresh.provider.close();
        const calls: [string, Promise<unknown>][] = [
          ['encrypt', fresh.provider.encrypt(randomBytes(size), ctx())],
          [
            'decrypt',
            fresh.provider.decrypt({ ciphertext: sealed.ciphertext, keyRef: sealed.keyRef ?? '' }, ctx()),
          ],
          ['status', fresh.provider.status(ctx())],
        ];
        for (const [what, work] of calls) {
          assertCode(await outcomeOf(work), 'TROUSSEAU_ERR_SHUTTING_DOWN', `${what} after close`);
        }
      } finally {
        await fresh.cleanup?.();
      }
    });
  });
}
