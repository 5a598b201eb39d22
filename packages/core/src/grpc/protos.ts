import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Directory of the .proto files shipped with this package (proto/ beside dist/). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

function loadService(file: string, pkg: string): ServiceClientConstructor {
  const definition = loadSync(file, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  const root = loadPackageDefinition(definition);
  const namespace = root[pkg] as GrpcObject;
  return namespace['KeyManagementService'] as ServiceClientConstructor;
}

let cached: { v2: ServiceClientConstructor; v1beta1: ServiceClientConstructor } | undefined;

/** The two KMS services, loaded once: `v2.KeyManagementService` and `v1beta1.KeyManagementService`. */
export function kmsServices(): { v2: ServiceClientConstructor; v1beta1: ServiceClientConstructor } {
  cached ??= { v2: loadService('kms-v2.proto', 'v2'), v1beta1: loadService('kms-v1beta1.proto', 'v1beta1') };
  return cached;
}
