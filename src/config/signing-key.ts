import { createPrivateKey, type JsonWebKeyInput, type KeyObject } from 'node:crypto';

/* The key file is checked when the config loads (a bad key is a config problem); auth/private-key-jwt signs with it. */
const MIN_RSA_BITS = 2048;

/** A private key ready to sign client assertions. */
export interface SigningKey {
  readonly key: KeyObject;
  /** JWS alg, from the key (or the JWK's own `alg`). */
  readonly alg: string;
  /** The JWK's `kid`, sent in the JWS header so the AS can pick the key. */
  readonly kid: string | undefined;
}

const EC_ALGS: Record<string, string> = {
  'P-256': 'ES256',
  prime256v1: 'ES256',
  'P-384': 'ES384',
  secp384r1: 'ES384',
  'P-521': 'ES512',
  secp521r1: 'ES512',
};
const ALLOWED_ALGS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]);

/**
 * Parses a private key from PEM (PKCS#8 or PKCS#1/SEC1) or JWK text and picks the JWS alg from it.
 * Throws an Error whose message says what is wrong (never the key material); config loading turns
 * it into a problem on `authorizationServer.privateKeyFile`.
 */
export function parseSigningKey(text: string): SigningKey {
  const trimmed = text.trim();
  let key: KeyObject;
  let jwk: Record<string, unknown> | undefined;
  try {
    if (trimmed.startsWith('{')) {
      jwk = JSON.parse(trimmed) as Record<string, unknown>;
      if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw new Error('not a JSON object');
      if (typeof jwk.d !== 'string') throw new Error('the JWK has no private part ("d")');
      key = createPrivateKey({ key: jwk, format: 'jwk' } as JsonWebKeyInput);
    } else {
      key = createPrivateKey(trimmed);
    }
  } catch (err) {
    throw new Error(`not a private key in PEM or JWK form (${(err as Error).message})`);
  }
  const alg = algorithmOf(key, typeof jwk?.alg === 'string' ? jwk.alg : undefined);
  return { key, alg, kid: typeof jwk?.kid === 'string' && jwk.kid !== '' ? jwk.kid : undefined };
}

function algorithmOf(key: KeyObject, declared: string | undefined): string {
  const details = key.asymmetricKeyDetails ?? {};
  let alg: string | undefined;
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`RSA key shorter than ${MIN_RSA_BITS} bits`);
      alg = declared ?? 'RS256';
      if (!/^(RS|PS)(256|384|512)$/.test(alg)) throw new Error(`alg ${alg} does not fit an RSA key`);
      break;
    case 'rsa-pss':
      if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new Error(`RSA key shorter than ${MIN_RSA_BITS} bits`);
      alg = declared ?? 'PS256';
      if (!/^PS(256|384|512)$/.test(alg)) throw new Error(`alg ${alg} does not fit an RSA-PSS key`);
      break;
    case 'ec': {
      alg = EC_ALGS[details.namedCurve ?? ''];
      if (alg === undefined) throw new Error(`unsupported EC curve ${details.namedCurve ?? '(unknown)'}`);
      if (declared !== undefined && declared !== alg)
        throw new Error(`alg ${declared} does not fit curve ${details.namedCurve}`);
      break;
    }
    case 'ed25519':
      alg = 'EdDSA';
      if (declared !== undefined && declared !== 'EdDSA' && declared !== 'Ed25519')
        throw new Error(`alg ${declared} does not fit an Ed25519 key`);
      break;
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType ?? '(symmetric)'}`);
  }
  if (!ALLOWED_ALGS.has(alg)) throw new Error(`unsupported alg ${alg}`);
  return alg;
}
