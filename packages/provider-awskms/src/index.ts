import { defineProvider } from '@trousseau/core';
import { AwsKmsProvider } from './awskms-provider.js';
import { awsKmsOptionsSchema } from './options.js';

export { AwsKmsProvider, MAX_PLAINTEXT_BYTES } from './awskms-provider.js';
export { mapAwsError } from './errors.js';
export { awsKmsOptionsSchema, regionOfArn, type AwsKmsOptions } from './options.js';

/** The built-in type name of this provider in a config file. */
export const PROVIDER_TYPE = 'awskms';

/** The `awskms` provider: AWS KMS symmetric keys through @aws-sdk/client-kms. */
export default defineProvider({
  name: PROVIDER_TYPE,
  coreRange: '^1.1.0',
  configSchema: awsKmsOptionsSchema,
  create: (options, context) => new AwsKmsProvider(options, context),
});
