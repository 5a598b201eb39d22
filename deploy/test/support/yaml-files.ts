import { readFileSync } from 'node:fs';
import { parseAllDocuments, parseDocument } from 'yaml';

/** A Kubernetes-style object: what every manifest document is at least. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [field: string]: unknown;
}

function assertKubeObject(value: unknown, where: string): KubeObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: a document is not a mapping`);
  }
  const object = value as Record<string, unknown>;
  if (typeof object['apiVersion'] !== 'string' || typeof object['kind'] !== 'string') {
    throw new Error(`${where}: a document has no apiVersion or kind`);
  }
  return object as unknown as KubeObject;
}

/** Every document of a multi-document YAML text, parsed strictly (duplicate keys and syntax errors fail). */
export function parseManifests(text: string, where: string): KubeObject[] {
  return parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true })
    .filter((document) => document.contents !== null)
    .map((document) => {
      if (document.errors.length > 0) {
        throw new Error(`${where}: ${document.errors.map((error) => error.message).join('; ')}`);
      }
      return assertKubeObject(document.toJS(), where);
    });
}

/** One YAML document from a file, strictly parsed. */
export function readYamlFile(path: string): unknown {
  const document = parseDocument(readFileSync(path, 'utf8'), { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    throw new Error(`${path}: ${document.errors.map((error) => error.message).join('; ')}`);
  }
  return document.toJS() as unknown;
}

/** One YAML document from a string (a ConfigMap's data entry, say), strictly parsed. */
export function parseYaml(text: string, where: string): unknown {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    throw new Error(`${where}: ${document.errors.map((error) => error.message).join('; ')}`);
  }
  return document.toJS() as unknown;
}
