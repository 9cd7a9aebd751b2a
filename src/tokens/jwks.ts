import type { KeyObject } from 'node:crypto';

export interface Jwk {
  kty: string;
  kid: string;
  use: 'sig';
  alg: 'RS256';
  n?: string;
  e?: string;
}

/** The public half of every key that validates user tokens, as a JWKS (RFC 7517). */
export function jwks(keys: { kid: string; key: KeyObject }[]): { keys: Jwk[] } {
  return {
    keys: keys.map(({ kid, key }) => {
      const jwk = key.export({ format: 'jwk' });
      return { kty: String(jwk.kty), kid, use: 'sig', alg: 'RS256', ...(jwk.n ? { n: jwk.n } : {}), ...(jwk.e ? { e: jwk.e } : {}) };
    }),
  };
}
