import { X509Certificate } from 'node:crypto';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * When a bundle of trusted CA certificates (PEM) stops trusting anything: the latest end of validity
 * (epoch ms) among its certificates, or undefined when it holds none that parses. The latest, not the
 * earliest, because a bundle in the middle of a CA rotation holds the old CA beside the new one.
 */
export function trustBundleExpiry(pem: string): number | undefined {
  let latest: number | undefined;
  for (const [block] of pem.matchAll(PEM_CERTIFICATE)) {
    let validTo: number;
    try {
      validTo = Date.parse(new X509Certificate(block).validTo);
    } catch {
      continue;
    }
    if (Number.isFinite(validTo) && (latest === undefined || validTo > latest)) latest = validTo;
  }
  return latest;
}
