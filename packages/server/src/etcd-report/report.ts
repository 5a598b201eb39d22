import { digestKeyId } from '@trousseau/core';
import type { EtcdScanner } from './etcd-scan.js';
import {
  classifyStoredValue,
  type EnvelopeCopy,
  type StorageKind,
  type StoredValue,
} from './stored-value.js';

/** What to report on. */
interface ReportRequest {
  /** kube-apiserver's `--etcd-prefix` (default `/registry`). */
  readonly prefix: string;
  /** Resources as stored under the prefix: `secrets`, `configmaps`, `<group>/<resource>` for others. */
  readonly resources: readonly string[];
  readonly pageSize: number;
  /** List the objects (`namespace/name`) of every group. */
  readonly withNames: boolean;
  /** Every object must carry a copy of the data key made by each of these provider instances. */
  readonly requireCopies: readonly string[];
  /** Every object must be under each of these key ids (the KMS v2 key_id, or a copy's key-id digest). */
  readonly requireKeyIds: readonly string[];
}

/** Objects whose KMS plugin ciphertext reads the same: same format, copies and key id. */
interface CiphertextGroup {
  readonly format: 'trousseau' | 'trousseau-unreadable' | 'other';
  readonly envelopeVersion?: number;
  readonly copies?: readonly EnvelopeCopy[];
  /** Version 4: the digest of the replicated key id. */
  readonly keyIdDigest?: string;
  readonly problem?: string;
  /** KMS v2 only: the key_id stored with the object. */
  readonly kmsKeyId?: string;
  readonly dekSourceType?: string;
  count: number;
  objects?: string[];
}

/** Objects stored the same way: kind and EncryptionConfiguration name. */
interface StorageGroup {
  readonly kind: StorageKind;
  readonly name?: string;
  readonly problem?: string;
  count: number;
  objects?: string[];
  /** KMS only: how the plugin's ciphertexts read. */
  ciphertexts?: CiphertextGroup[];
}

/** Objects that fail one of the requirements. */
interface Shortfall {
  readonly requirement: string;
  count: number;
  objects?: string[];
}

interface ResourceReport {
  readonly resource: string;
  readonly keyPrefix: string;
  total: number;
  readonly storage: StorageGroup[];
  readonly shortfalls: Shortfall[];
}

interface EtcdReport {
  readonly prefix: string;
  /** The etcd revision every object was read at; undefined when nothing was read. */
  readonly revision: string | undefined;
  readonly resources: ResourceReport[];
  readonly requirements: readonly string[];
  /** Whether every object meets every requirement (true when none is given). */
  readonly satisfied: boolean;
}

/** The etcd key prefix of a resource: `<prefix>/<resource>/`, with single slashes. */
function keyPrefixOf(prefix: string, resource: string): string {
  const parts = [...prefix.split('/'), ...resource.split('/')].filter((part) => part !== '');
  return `/${parts.join('/')}/`;
}

function addName(target: { objects?: string[] }, name: string, withNames: boolean): void {
  if (withNames) (target.objects ??= []).push(name);
}

interface Requirement {
  readonly label: string;
  readonly met: (stored: StoredValue) => boolean;
}

function copiesOf(stored: StoredValue): readonly EnvelopeCopy[] {
  return stored.plugin?.format === 'trousseau' ? stored.plugin.copies : [];
}

function requirementsOf(request: ReportRequest): Requirement[] {
  return [
    ...request.requireCopies.map((instance) => ({
      label: `a copy by provider instance "${instance}"`,
      met: (stored: StoredValue) => copiesOf(stored).some((copy) => copy.instance === instance),
    })),
    ...request.requireKeyIds.map((keyId) => {
      const digest = Buffer.from(digestKeyId(keyId)).toString('hex');
      return {
        label: `key id "${keyId}" (digest ${digest})`,
        met: (stored: StoredValue) =>
          stored.kmsKeyId === keyId ||
          (stored.plugin?.format === 'trousseau' && stored.plugin.keyIdDigest === digest) ||
          copiesOf(stored).some((copy) => copy.keyIdDigest === digest),
      };
    }),
  ];
}

function storageGroupOf(groups: Map<string, StorageGroup>, stored: StoredValue): StorageGroup {
  const key = JSON.stringify([stored.kind, stored.name ?? null, stored.problem ?? null]);
  let group = groups.get(key);
  if (group === undefined) {
    group = {
      kind: stored.kind,
      ...(stored.name === undefined ? {} : { name: stored.name }),
      ...(stored.problem === undefined ? {} : { problem: stored.problem }),
      count: 0,
    };
    groups.set(key, group);
  }
  return group;
}

function ciphertextGroupOf(
  groups: Map<string, CiphertextGroup>,
  stored: StoredValue,
): CiphertextGroup | undefined {
  const plugin = stored.plugin;
  if (plugin === undefined) return undefined;
  const identity = {
    format: plugin.format,
    ...(plugin.format === 'trousseau'
      ? {
          envelopeVersion: plugin.envelopeVersion,
          copies: plugin.copies,
          ...(plugin.keyIdDigest === undefined ? {} : { keyIdDigest: plugin.keyIdDigest }),
        }
      : {}),
    ...(plugin.format === 'trousseau-unreadable' ? { problem: plugin.problem } : {}),
    ...(stored.kmsKeyId === undefined ? {} : { kmsKeyId: stored.kmsKeyId }),
    ...(stored.dekSourceType === undefined ? {} : { dekSourceType: stored.dekSourceType }),
  };
  const key = JSON.stringify([stored.kind, stored.name, identity]);
  let group = groups.get(key);
  if (group === undefined) {
    group = { ...identity, count: 0 };
    groups.set(key, group);
  }
  return group;
}

/** Reads every object of every requested resource and counts how each is stored. Never decrypts. */
export async function buildReport(scanner: EtcdScanner, request: ReportRequest): Promise<EtcdReport> {
  const requirements = requirementsOf(request);
  const resources: ResourceReport[] = [];
  for (const resource of request.resources) {
    const keyPrefix = keyPrefixOf(request.prefix, resource);
    const storage = new Map<string, StorageGroup>();
    const ciphertexts = new Map<string, CiphertextGroup>();
    const shortfalls: Shortfall[] = requirements.map((requirement) => ({
      requirement: requirement.label,
      count: 0,
    }));
    const report: ResourceReport = { resource, keyPrefix, total: 0, storage: [], shortfalls };
    for await (const entry of scanner.scan(keyPrefix, request.pageSize)) {
      const name = entry.key.subarray(Buffer.byteLength(keyPrefix)).toString('utf8');
      const stored = classifyStoredValue(entry.value);
      report.total += 1;
      const group = storageGroupOf(storage, stored);
      group.count += 1;
      addName(group, name, request.withNames);
      const byCiphertext = ciphertextGroupOf(ciphertexts, stored);
      if (byCiphertext !== undefined) {
        if (byCiphertext.count === 0) (group.ciphertexts ??= []).push(byCiphertext);
        byCiphertext.count += 1;
        addName(byCiphertext, name, request.withNames);
      }
      requirements.forEach((requirement, index) => {
        const shortfall = shortfalls[index];
        if (shortfall === undefined || requirement.met(stored)) return;
        shortfall.count += 1;
        addName(shortfall, name, request.withNames);
      });
    }
    report.storage.push(...storage.values());
    resources.push(report);
  }
  return {
    prefix: request.prefix,
    revision: scanner.revision,
    resources,
    requirements: requirements.map((requirement) => requirement.label),
    satisfied: resources.every((resource) => resource.shortfalls.every((shortfall) => shortfall.count === 0)),
  };
}

function describeStorage(group: StorageGroup): string {
  const named = (what: string): string => (group.name === undefined ? what : `${what} "${group.name}"`);
  const problem = group.problem === undefined ? '' : ` (unreadable: ${group.problem})`;
  switch (group.kind) {
    case 'identity':
      return 'identity: NOT ENCRYPTED (plaintext in etcd)';
    case 'aescbc':
    case 'aesgcm':
    case 'secretbox':
      return `${named(`${group.kind} key`)}${problem}`;
    case 'kms-v1':
      return `${named('KMS v1 plugin')}${problem}`;
    case 'kms-v2':
      return `${named('KMS v2 plugin')}${problem}`;
    case 'unknown':
      return `unknown encryption prefix ${JSON.stringify(group.name ?? '')}${problem}`;
  }
}

function describeCiphertext(group: CiphertextGroup): string {
  const keyId = group.kmsKeyId === undefined ? '' : `; key_id ${JSON.stringify(group.kmsKeyId)}`;
  switch (group.format) {
    case 'other':
      return `not a Trousseau ciphertext${keyId}`;
    case 'trousseau-unreadable':
      return `Trousseau-like but unreadable (${group.problem ?? '?'})${keyId}`;
    case 'trousseau': {
      const copies = (group.copies ?? [])
        .map(
          (copy) =>
            `${copy.instance} (key-id digest ${copy.keyIdDigest}${copy.keyRef === '' ? '' : `, key ${copy.keyRef}`})`,
        )
        .join(' + ');
      return `Trousseau envelope v${group.envelopeVersion ?? '?'}: ${copies}${keyId}`;
    }
  }
}

function objectLines(objects: readonly string[] | undefined, indent: string): string[] {
  return (objects ?? []).map((name) => `${indent}${name}`);
}

/** The report as lines of text for people. */
export function renderReport(report: EtcdReport, endpoints: readonly string[]): string[] {
  const lines = [
    `trousseau etcd-report: ${endpoints.join(', ')}, prefix ${report.prefix}, revision ${report.revision ?? '(nothing read)'} (read-only, nothing decrypted)`,
  ];
  for (const resource of report.resources) {
    lines.push(`${resource.resource}: ${resource.total} object(s) under ${resource.keyPrefix}`);
    const width = String(resource.total).length;
    for (const group of resource.storage) {
      lines.push(`  ${String(group.count).padStart(width)}  ${describeStorage(group)}`);
      if (group.ciphertexts === undefined) lines.push(...objectLines(group.objects, '        '));
      for (const ciphertext of group.ciphertexts ?? []) {
        lines.push(`      ${String(ciphertext.count).padStart(width)}  ${describeCiphertext(ciphertext)}`);
        lines.push(...objectLines(ciphertext.objects, '            '));
      }
    }
    for (const shortfall of resource.shortfalls) {
      lines.push(
        shortfall.count === 0
          ? `  ✔ every object has ${shortfall.requirement}`
          : `  ✘ ${shortfall.count} object(s) lack ${shortfall.requirement}`,
      );
      lines.push(...objectLines(shortfall.objects, '        '));
    }
  }
  if (report.requirements.length > 0) {
    lines.push(report.satisfied ? 'all requirements met' : 'requirements NOT met');
  }
  return lines;
}
