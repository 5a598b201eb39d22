// Test certificates made at test time: a CA, a server certificate for 127.0.0.1/localhost and a client
// certificate, all signed by that CA (PEM). For TLS tests of the emulators; never for production.
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

export interface TestCertificates {
  /** The CA certificate (PEM): trust it on both sides. */
  readonly ca: string;
  readonly serverKey: string;
  /** SAN: IP 127.0.0.1, IP ::1, DNS localhost. */
  readonly serverCert: string;
  readonly clientKey: string;
  /** Extended key usage clientAuth, subject CN `trousseau-test-client`. */
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

function baseCertificate(publicKey: forge.pki.rsa.PublicKey, commonName: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A positive serial: the first byte below 0x80.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + 365 * 24 * 60 * 60 * 1000);
  cert.setSubject([
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'Trousseau tests' },
  ]);
  return cert;
}

/** Makes a fresh CA and a server and a client certificate signed by it (RSA 2048, SHA-256). */
export async function createTestCertificates(): Promise<TestCertificates> {
  const [caKeys, serverKeys, clientKeys] = await Promise.all([keyPair(), keyPair(), keyPair()]);

  const ca = baseCertificate(caKeys.forgePublic, 'Trousseau Test CA');
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.forgePrivate, forge.md.sha256.create());
  const caKeyId = ca.generateSubjectKeyIdentifier().getBytes();

  const leaf = (
    keys: { forgePublic: forge.pki.rsa.PublicKey },
    commonName: string,
    extensions: object[],
  ): string => {
    const cert = baseCertificate(keys.forgePublic, commonName);
    cert.setIssuer(ca.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'authorityKeyIdentifier', keyIdentifier: caKeyId },
      ...extensions,
    ]);
    cert.sign(caKeys.forgePrivate, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  };

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
  const clientCert = leaf(clientKeys, 'trousseau-test-client', [{ name: 'extKeyUsage', clientAuth: true }]);

  return {
    ca: forge.pki.certificateToPem(ca),
    serverKey: serverKeys.pem,
    serverCert,
    clientKey: clientKeys.pem,
    clientCert,
  };
}
