import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DisabledException,
  KMSInternalException,
  KMSInvalidStateException,
  KMSServiceException,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { outcomeOf } from '@trousseau/core';
import { mapAwsError } from '../src/index.js';

const metadata = { httpStatusCode: 400, attempts: 1 };

/** An error the KMS model does not list: the SDK makes a KMSServiceException named after `__type`. */
function unmodelled(name: string, message: string): KMSServiceException {
  return new KMSServiceException({ name, $fault: 'client', message, $metadata: metadata });
}

describe('AWS KMS errors: the key is gone', () => {
  it('maps a revoked permission, a disabled, pending-deletion or deleted key to KEY_GONE', () => {
    for (const error of [
      unmodelled(
        'AccessDeniedException',
        'User: arn:aws:sts::111122223333:assumed-role/trousseau/node is not authorized to perform: kms:Encrypt on this resource because no resource-based policy allows the kms:Encrypt action',
      ),
      new DisabledException({
        message: 'arn:aws:kms:eu-west-1:111122223333:key/k is disabled.',
        $metadata: metadata,
      }),
      new KMSInvalidStateException({
        message: 'arn:aws:kms:eu-west-1:111122223333:key/k is pending deletion.',
        $metadata: metadata,
      }),
      new NotFoundException({
        message: 'Alias arn:aws:kms:eu-west-1:111122223333:alias/k is not found.',
        $metadata: metadata,
      }),
    ]) {
      const mapped = mapAwsError(error, 'AWS KMS Encrypt with key alias/k');
      assert.equal(mapped.code, 'TROUSSEAU_ERR_PROVIDER_KEY_GONE', error.name);
      assert.equal(mapped.retryable, false);
      assert.equal(outcomeOf(mapped), 'FAILED_PRECONDITION');
      assert.ok(mapped.message.includes(error.name), mapped.message);
    }
  });

  it('does not call throttling or a KMS failure a gone key', () => {
    const throttled = mapAwsError(unmodelled('ThrottlingException', 'Rate exceeded'), 'AWS KMS Encrypt');
    assert.equal(throttled.code, 'TROUSSEAU_ERR_PROVIDER_THROTTLED');
    const failed = mapAwsError(
      new KMSInternalException({ message: 'internal', $metadata: { httpStatusCode: 500 } }),
      'AWS KMS Encrypt',
    );
    assert.equal(failed.code, 'TROUSSEAU_ERR_PROVIDER_UNAVAILABLE');
  });
});
