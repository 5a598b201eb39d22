import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  ERROR_CODES,
  isTrousseauError,
  OUTCOMES,
  outcomeOf,
  toTrousseauError,
  TrousseauError,
} from '../src/index.js';
import { grpcStatusOf, toServiceError } from '../src/grpc/index.js';

/** An error as a provider built against a newer core throws it: a code this build does not list. */
function fromNewerCore(fault: 'client' | 'server', retryable: boolean): Error {
  return Object.assign(new Error('raised by a provider built against a newer core'), {
    isTrousseauError: true,
    code: 'TROUSSEAU_ERR_PROVIDER_QUANTUM_DECOHERENCE',
    fault,
    retryable,
  });
}

describe('error codes', () => {
  it('are all listed in docs/errors.md with their gRPC status, fault and retryable', async () => {
    const doc = await readFile(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
    const rows = doc
      .split('\n')
      .filter((line) => line.startsWith('| `TROUSSEAU_ERR_'))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      const row = rows.find((cells) => cells[1] === `\`${code}\``);
      assert.ok(row !== undefined, `docs/errors.md lacks ${code}`);
      assert.equal(row[2], entry.status, `docs/errors.md gives ${code} another gRPC status`);
      assert.equal(row[3], entry.fault, `docs/errors.md gives ${code} another fault`);
      assert.equal(row[4], entry.retryable ? 'yes' : 'no', `docs/errors.md gives ${code} another retryable`);
    }
    const listed = rows.map((cells) => cells[1]?.replaceAll('`', ''));
    assert.deepEqual(
      listed.filter((code) => code === undefined || !Object.hasOwn(ERROR_CODES, code)),
      [],
      'docs/errors.md lists a code the table does not have',
    );
  });

  it('name their gRPC status in the outcome vocabulary, which is exactly the gRPC status names', () => {
    const grpcNames = Object.keys(GrpcStatus).filter((key) => Number.isNaN(Number(key)));
    assert.deepEqual([...OUTCOMES].sort(), grpcNames.sort());
    for (const outcome of OUTCOMES) assert.equal(typeof GrpcStatus[outcome], 'number');
  });

  it('are recognised by shape, so a copy of core from another install still counts', () => {
    const foreign = Object.assign(new Error('from another copy of core'), {
      isTrousseauError: true,
      code: 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE',
      fault: 'server',
      retryable: true,
    });
    assert.ok(isTrousseauError(foreign));
    assert.equal(toTrousseauError(foreign), foreign);
    assert.ok(!isTrousseauError({ isTrousseauError: true, code: 'NOT_A_CODE', message: 'x' }));
    const wrapped = toTrousseauError(new TypeError('boom'));
    assert.equal(wrapped.code, 'TROUSSEAU_ERR_INTERNAL');
    assert.ok(wrapped.cause instanceof TypeError);
    assert.equal(
      new TrousseauError('TROUSSEAU_ERR_PROVIDER_UNAVAILABLE', 'x', { retryable: false }).retryable,
      false,
    );
  });

  it('accept a code from a newer core by its prefix, fault and retryable flag, and map it by them', () => {
    const serverRetryable = fromNewerCore('server', true);
    assert.ok(isTrousseauError(serverRetryable));
    assert.equal(toTrousseauError(serverRetryable), serverRetryable, 'kept as it is, not wrapped');
    assert.equal(outcomeOf(serverRetryable), 'UNAVAILABLE');
    assert.equal(outcomeOf(fromNewerCore('server', false)), 'FAILED_PRECONDITION');
    assert.equal(outcomeOf(fromNewerCore('client', false)), 'INVALID_ARGUMENT');
    assert.equal(outcomeOf(fromNewerCore('client', true)), 'UNAVAILABLE');

    const answer = toServiceError(serverRetryable);
    assert.equal(answer.code, GrpcStatus.UNAVAILABLE, 'not INTERNAL');
    assert.deepEqual(answer.trailers, {
      'trousseau-error-code': 'TROUSSEAU_ERR_PROVIDER_QUANTUM_DECOHERENCE',
    });
    assert.match(answer.details ?? '', /^TROUSSEAU_ERR_PROVIDER_QUANTUM_DECOHERENCE: raised by a provider/);
  });

  it('refuse a shape without the prefix, a fault or a retryable flag', () => {
    const shaped = (fields: Record<string, unknown>): Error =>
      Object.assign(new Error('x'), { isTrousseauError: true, fault: 'server', retryable: true, ...fields });
    assert.ok(isTrousseauError(shaped({ code: 'TROUSSEAU_ERR_SOMETHING_NEW' })));
    assert.ok(!isTrousseauError(shaped({ code: 'ACME_ERR_SOMETHING_NEW' })));
    assert.ok(!isTrousseauError(shaped({ code: 'TROUSSEAU_ERR_' })));
    assert.ok(!isTrousseauError(shaped({ code: 'TROUSSEAU_ERR_SOMETHING_NEW', fault: 'nobody' })));
    assert.ok(!isTrousseauError(shaped({ code: 'TROUSSEAU_ERR_SOMETHING_NEW', retryable: 'maybe' })));
    const refused = shaped({ code: 'ACME_ERR_SOMETHING_NEW' });
    assert.equal(toTrousseauError(refused).code, 'TROUSSEAU_ERR_INTERNAL');
    assert.equal(outcomeOf(refused), 'INTERNAL');
  });

  it('send every outcome as the status code grpc-js gives its name', () => {
    for (const outcome of OUTCOMES) assert.equal(grpcStatusOf(outcome), GrpcStatus[outcome], outcome);
  });

  it('answer a known code with the status its table entry names', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      const error = new TrousseauError(code as keyof typeof ERROR_CODES, 'x');
      assert.equal(outcomeOf(error), entry.status);
      assert.equal(toServiceError(error).code, GrpcStatus[entry.status], code);
    }
  });
});
