import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireCommand } from './require-tool.js';

/** True when `openssl` is there to make test certificates (see require-tool.ts: never a skip in CI). */
export function opensslAvailable(): boolean {
  return requireCommand('openssl');
}

/**
 * A self-signed P-256 certificate for 127.0.0.1 (CN and IP SAN), valid one day, written to `dir` as
 * key.pem and cert.pem. The certificate is its own CA: give it to a client as its trust anchor.
 */
export function selfSignedCert(dir: string): { key: string; cert: string } {
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
      ...['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}
