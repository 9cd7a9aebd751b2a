import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { MeshidError, type Clock } from '../core/index.ts';
import type { SessionKey, SessionKeySource } from './session-keys.ts';

export const CHALLENGE_TTL_MS = 60_000;
/** What a client signs: a fixed context string, so the key never signs a bare server value. */
export const PROOF_CONTEXT = 'meshid-login-v1:';

const INFO = 'meshid login challenge v1';

function macKey(key: SessionKey): Buffer {
  return Buffer.from(hkdfSync('sha256', key.secret, new Uint8Array(0), INFO, 32));
}

/**
 * A stateless challenge: `<kid>.<payload>.<mac>`. Any replica can check it, and it expires
 * after a minute, so a captured proof is of no use later.
 */
export function issueChallenge(keys: SessionKeySource, clock: Clock): { challenge: string; expiresAt: number } {
  const key = keys.current();
  const expiresAt = clock.now() + CHALLENGE_TTL_MS;
  const payload = Buffer.from(JSON.stringify({ n: randomBytes(16).toString('base64url'), exp: expiresAt })).toString('base64url');
  const mac = createHmac('sha256', macKey(key)).update(payload).digest('base64url');
  return { challenge: `${key.kid}.${payload}.${mac}`, expiresAt };
}

export function verifyChallenge(challenge: string, keys: SessionKeySource, clock: Clock): void {
  const [kid, payload, mac, ...rest] = challenge.split('.');
  const key = kid ? keys.find(kid) : undefined;
  if (!key || !payload || !mac || rest.length > 0 || challenge.length > 1024) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge is malformed or from an unknown key');
  }
  const expected = createHmac('sha256', macKey(key)).update(payload).digest();
  const given = Buffer.from(mac, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge was not issued by meshid');
  }
  const { exp } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
  if (typeof exp !== 'number' || exp <= clock.now()) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge expired; ask for a new one');
  }
}
