import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ERROR_CODES, isTrousseauError, toTrousseauError, TrousseauError } from '../src/index.js';

describe('error codes', () => {
  it('are all listed in docs/errors.md with their gRPC status', async () => {
    const doc = await readFile(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
    const rows = doc
      .split('\n')
      .filter((line) => line.startsWith('|'))
      .map((line) => line.split('|').map((cell) => cell.trim()));
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      const row = rows.find((cells) => cells[1] === `\`${code}\``);
      assert.ok(row !== undefined, `docs/errors.md lacks ${code}`);
      assert.equal(row[2], GrpcStatus[entry.grpc], `docs/errors.md gives ${code} another gRPC status`);
      assert.equal(row[3], entry.fault, `docs/errors.md gives ${code} another fault`);
      assert.equal(row[4], entry.retryable ? 'yes' : 'no', `docs/errors.md gives ${code} another retryable`);
    }
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
});
