// The key identifiers and serial of an X.509 certificate as Vault's cert auth method shows them in a
// login's metadata: colon-separated lowercase hex (certutil.GetHexFormatted) and a decimal serial.
import type { X509Certificate } from 'node:crypto';
import forge from 'node-forge';

const SUBJECT_KEY_ID = '2.5.29.14';
const AUTHORITY_KEY_ID = '2.5.29.35';

function hexFormatted(bytes: string): string {
  return [...bytes].map((char) => char.charCodeAt(0).toString(16).padStart(2, '0')).join(':');
}

function children(node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  return Array.isArray(node?.value) ? node.value : [];
}

/** The DER value of the extension `oid` of the certificate, or undefined. */
function extensionValue(certificate: X509Certificate, oid: string): string | undefined {
  const root = forge.asn1.fromDer(forge.util.createBuffer(certificate.raw.toString('binary')));
  const tbs = children(root)[0];
  const wrapper = children(tbs).find(
    (node) => node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && Number(node.type) === 3,
  );
  for (const extension of children(children(wrapper)[0])) {
    const [id, ...rest] = children(extension);
    if (id === undefined || typeof id.value !== 'string' || forge.asn1.derToOid(id.value) !== oid) continue;
    const value = rest[rest.length - 1]?.value;
    return typeof value === 'string' ? value : undefined;
  }
  return undefined;
}

/** `subject_key_id` of the certificate (`''` without the extension). */
export function subjectKeyId(certificate: X509Certificate): string {
  const value = extensionValue(certificate, SUBJECT_KEY_ID);
  if (value === undefined) return '';
  const octets = forge.asn1.fromDer(value).value;
  return typeof octets === 'string' ? hexFormatted(octets) : '';
}

/** `authority_key_id` of the certificate: its keyIdentifier field (`''` without one). */
export function authorityKeyId(certificate: X509Certificate): string {
  const value = extensionValue(certificate, AUTHORITY_KEY_ID);
  if (value === undefined) return '';
  const keyId = children(forge.asn1.fromDer(value)).find(
    (node) => node.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && Number(node.type) === 0,
  );
  return typeof keyId?.value === 'string' ? hexFormatted(keyId.value) : '';
}

/** The serial number in decimal, as Go's big.Int prints it. */
export function serialDecimal(certificate: X509Certificate): string {
  return BigInt(`0x${certificate.serialNumber}`).toString(10);
}

/** The subject's common name (the last CN, as Go's pkix.Name keeps it), or `''`. */
export function commonName(certificate: X509Certificate): string {
  const names = certificate.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice('CN='.length));
  return names[names.length - 1] ?? '';
}
