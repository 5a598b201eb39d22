import { fileURLToPath } from 'node:url';

/**
 * Directory of the .proto files shipped with this package (proto/ beside dist/): the KMS APIs as
 * kube-apiserver defines them, and the source of truth for the codecs in `kms-codecs.ts`.
 */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));
