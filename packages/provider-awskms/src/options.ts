import { secretRefSchema } from '@trousseau/core';
import * as z from 'zod';

const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;
const KEY_ID = /^(mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const ALIAS = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** The region named in a key or alias ARN, if `keyId` is one. */
export function regionOfArn(keyId: string): string | undefined {
  return KEY_ARN.exec(keyId)?.[1];
}

export const awsKmsOptionsSchema = z
  .strictObject({
    /** The KMS key: key id, key ARN, `alias/name`, or alias ARN. */
    keyId: z.string().refine((value) => KEY_ID.test(value) || ALIAS.test(value) || KEY_ARN.test(value), {
      message: 'must be a key id, a key ARN, an alias name (alias/...) or an alias ARN',
    }),
    /** AWS region; else the one in the key ARN; else the SDK's (AWS_REGION, shared config). */
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as eu-west-1')
      .optional(),
    /** Endpoint URL (a VPC interface endpoint, a FIPS endpoint, or an emulator in tests). */
    endpoint: z.url().optional(),
    /** A fixed encryption context bound to every ciphertext; decryption requires the same map. */
    encryptionContext: z.record(z.string().min(1), z.string()).default({}),
    /** Attempts per call, first one included; the SDK retries throttling, 5xx and network errors. */
    maxAttempts: z.number().int().min(1).max(10).default(3),
    /** TCP/TLS connect timeout per attempt, milliseconds. */
    connectTimeoutMs: z.number().int().positive().max(60_000).default(2_000),
    /** Timeout of one attempt, milliseconds (every call is also bounded by the caller's deadline). */
    requestTimeoutMs: z.number().int().positive().max(60_000).default(3_000),
    /** How long a DescribeKey answer is trusted by the health check, seconds (0: every check asks). */
    statusRefreshSeconds: z.number().nonnegative().max(3_600).default(30),
    /** A role to assume (STS AssumeRole) with the credentials of the default chain. */
    roleArn: z
      .string()
      .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'must be an IAM role ARN')
      .optional(),
    roleSessionName: z
      .string()
      .regex(/^[\w+=,.@-]{2,64}$/, 'must be 2-64 characters of A-Z a-z 0-9 and +=,.@_-')
      .default('trousseau'),
    externalId: z.string().min(2).max(1224).optional(),
    /**
     * Static credentials read from secret references, for running outside Kubernetes and for tests.
     * Omit it in production: the SDK's default chain (IRSA, EKS Pod Identity, env, shared files) applies.
     */
    credentials: z
      .strictObject({
        accessKeyId: secretRefSchema,
        secretAccessKey: secretRefSchema,
        sessionToken: secretRefSchema.optional(),
      })
      .optional(),
  })
  .superRefine((options, ctx) => {
    const arnRegion = regionOfArn(options.keyId);
    if (arnRegion !== undefined && options.region !== undefined && arnRegion !== options.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: `is ${options.region}, but keyId is an ARN in ${arnRegion}`,
      });
    }
    if (options.externalId !== undefined && options.roleArn === undefined) {
      ctx.addIssue({ code: 'custom', path: ['externalId'], message: 'needs roleArn' });
    }
  });

export type AwsKmsOptions = z.output<typeof awsKmsOptionsSchema>;
