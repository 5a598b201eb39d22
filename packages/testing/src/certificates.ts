// Test certificates made at test time: a CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, all signed by that CA (PEM). For TLS tests of the emulators; never for production.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

export interface TestCertificates {
  /** The CA certificate (PEM): trust it on both sides. */
  readonly ca: string;
  /** The CA's private key (PEM), to issue more certificates with {@link issueClientCertificate}. */
  readonly caKey: string;
  readonly serverKey: string;
  /** SAN: IP 127.0.0.1, IP ::1, DNS localhost. */
  readonly serverCert: string;
  readonly clientKey: string;
  /** Extended key usage clientAuth, subject CN `trousseau-test-client` (or the one asked for). */
  readonly clientCert: string;
}

const generateRsa = promisify(generateKeyPair);

async function keyPair(): Promise<{
  pem: string;
  forgePrivate: forge.pki.rsa.PrivateKey;
  forgePublic: forge.pki.rsa.PublicKey;
}> {
  const { privateKey, publicKey } = await generateRsa('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    pem: privateKey,
    forgePrivate: forge.pki.privateKeyFromPem(privateKey),
    forgePublic: forge.pki.publicKeyFromPem(publicKey),
  };
}

function baseCertificate(
  publicKey: forge.pki.rsa.PublicKey,
  commonName: string,
  notAfter = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000),
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the first byte below 0x80.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(Math.min(now - 60 * 60 * 1000, notAfter.getTime() - 60 * 1000));
  cert.validity.notAfter = notAfter;
  cert.setSubject([
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Trousseau tests' },
  ]);
  return cert;
}

/**
 * Makes a fresh CA and a server and a client certificate signed by it (RSA 2048, SHA-256). The client's
 * common name is `trousseau-test-client` unless `clientCommonName` says otherwise.
 */
export async function createTestCertificates(
  options: { readonly clientCommonName?: string } = {},
): Promise<TestCertificates> {
  const [caKeys, serverKeys, clientKeys] = await Promise.all([keyPair(), keyPair(), keyPair()]);

  const ca = baseCertificate(caKeys.forgePublic, 'Trousseau Test CA');
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.forgePrivate, forge.md.sha256.create());

  const leaf = (
    keys: { forgePublic: forge.pki.rsa.PublicKey },
    commonName: string,
    extensions: object[],
  ): string => signLeaf(ca, caKeys.forgePrivate, keys.forgePublic, commonName, extensions);

  const serverCert = leaf(serverKeys, 'localhost', [
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
        { type: 7, ip: '::1' },
      ],
    },
  ]);
  const clientCert = leaf(clientKeys, options.clientCommonName ?? 'trousseau-test-client', [
    { name: 'extKeyUsage', clientAuth: true },
  ]);

  return {
    ca: forge.pki.certificateToPem(ca),
    caKey: caKeys.pem,
    serverKey: serverKeys.pem,
    serverCert,
    clientKey: clientKeys.pem,
    clientCert,
  };
}

function signLeaf(
  ca: forge.pki.Certificate,
  caKey: forge.pki.rsa.PrivateKey,
  publicKey: forge.pki.rsa.PublicKey,
  commonName: string,
  extensions: object[],
  notAfter?: Date,
): string {
  const cert = baseCertificate(publicKey, commonName, notAfter);
  cert.setIssuer(ca.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
    ...extensions,
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/**
 * Another client certificate (a new key) from the CA of `certificates`, as cert-manager issues when it
 * renews one; `notAfter` makes one that has expired or expires soon.
 */
export async function issueClientCertificate(
  certificates: Pick<TestCertificates, 'ca' | 'caKey'>,
  options: { readonly commonName?: string; readonly notAfter?: Date } = {},
): Promise<{ readonly cert: string; readonly key: string }> {
  const keys = await keyPair();
  const cert = signLeaf(
    forge.pki.certificateFromPem(certificates.ca),
    forge.pki.privateKeyFromPem(certificates.caKey),
    keys.forgePublic,
    options.commonName ?? 'trousseau-test-client',
    [{ name: 'extKeyUsage', clientAuth: true }],
    options.notAfter,
  );
  return { cert, key: keys.pem };
}
