import { Ajv, type JSONSchemaType } from 'ajv';

/**
 * `apiserver.config.k8s.io/v1` EncryptionConfiguration, written out by hand: it is a file kube-apiserver
 * reads (--encryption-provider-config), not a served API, so it is in no OpenAPI document and no schema
 * package. Fields and rules follow k8s.io/apiserver/pkg/apis/apiserver/v1 (types.go, defaults.go) and
 * k8s.io/apiserver/pkg/apis/apiserver/validation (validation.go):
 *  - each providers[] element sets exactly one of aesgcm, aescbc, secretbox, identity, kms;
 *  - kms.name and kms.endpoint are required, the endpoint is a unix:// address;
 *  - kms.apiVersion is "v1" (the default) or "v2"; cachesize is not allowed with v2 and is not 0 with v1;
 *  - timeout is a positive Go duration (default 3s);
 *  - a v2 provider's name has no ":" and is unique across every kms provider of the file.
 * Unknown fields are errors here, as they are for the apiserver's strict decoder.
 */
export interface KmsConfiguration {
  apiVersion?: 'v1' | 'v2';
  name: string;
  cachesize?: number;
  endpoint: string;
  timeout?: string;
}

interface KeyList {
  keys: { name: string; secret: string }[];
}

export interface ProviderConfiguration {
  aesgcm?: KeyList;
  aescbc?: KeyList;
  secretbox?: KeyList;
  identity?: Record<string, never>;
  kms?: KmsConfiguration;
}

export interface EncryptionConfiguration {
  apiVersion: 'apiserver.config.k8s.io/v1';
  kind: 'EncryptionConfiguration';
  resources: { resources: string[]; providers: ProviderConfiguration[] }[];
}

/** A Go duration as metav1.Duration parses it: one or more number+unit pairs. */
const GO_DURATION = '^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$';

const keyList = {
  type: 'object',
  additionalProperties: false,
  required: ['keys'],
  properties: {
    keys: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'secret'],
        properties: { name: { type: 'string', minLength: 1 }, secret: { type: 'string', minLength: 1 } },
      },
    },
  },
} as const;

const schema: JSONSchemaType<EncryptionConfiguration> = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'resources'],
  properties: {
    apiVersion: { type: 'string', const: 'apiserver.config.k8s.io/v1' },
    kind: { type: 'string', const: 'EncryptionConfiguration' },
    resources: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['resources', 'providers'],
        properties: {
          resources: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          providers: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              minProperties: 1,
              maxProperties: 1,
              required: [],
              properties: {
                aesgcm: { ...keyList, nullable: true },
                aescbc: { ...keyList, nullable: true },
                secretbox: { ...keyList, nullable: true },
                identity: {
                  type: 'object',
                  additionalProperties: false,
                  required: [],
                  nullable: true,
                } as never,
                kms: {
                  type: 'object',
                  nullable: true,
                  additionalProperties: false,
                  required: ['name', 'endpoint'],
                  properties: {
                    apiVersion: { type: 'string', enum: ['v1', 'v2'], nullable: true },
                    name: { type: 'string', minLength: 1 },
                    cachesize: { type: 'integer', minimum: -2147483648, maximum: 2147483647, nullable: true },
                    endpoint: { type: 'string', pattern: '^unix:///?[^/].*$' },
                    timeout: { type: 'string', pattern: GO_DURATION, nullable: true },
                  },
                  if: { required: ['apiVersion'], properties: { apiVersion: { const: 'v2' } } },
                  then: { properties: { cachesize: false } },
                  else: { properties: { cachesize: { not: { const: 0 } } } },
                } as never,
              },
            },
          },
        },
      },
    },
  },
};

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false }).compile(schema);

/** Validates an EncryptionConfiguration; throws naming every problem. Returns it typed. */
export function validateEncryptionConfiguration(value: unknown): EncryptionConfiguration {
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map(
      (error) => `${error.instancePath || '/'} ${error.message ?? ''}`,
    );
    throw new Error(`EncryptionConfiguration is invalid: ${problems.join('; ')}`);
  }
  const names = new Set<string>();
  const problems: string[] = [];
  for (const resource of value.resources) {
    for (const provider of resource.providers) {
      const kms = provider.kms;
      if (kms === undefined) continue;
      const v2 = kms.apiVersion === 'v2';
      if (v2 && kms.name.includes(':')) problems.push(`kms provider name "${kms.name}" contains ":"`);
      if (v2 && names.has(kms.name)) problems.push(`kms provider name "${kms.name}" is used twice`);
      names.add(kms.name);
      if (kms.timeout !== undefined && /^(0+(\.0+)?[a-zµ]+)+$/.test(kms.timeout)) {
        problems.push(`kms provider "${kms.name}" has a zero timeout`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`EncryptionConfiguration is invalid: ${problems.join('; ')}`);
  return value;
}
