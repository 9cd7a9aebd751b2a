import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MeshidError, type Clock } from '../core/index.ts';
import { deriveKey, type SessionKey, type SessionKeySource } from './session-keys.ts';

export const CHALLENGE_TTL_MS = 60_000;
/**
 * What a client signs: a fixed context string, then the challenge, whose payload names the
 * server it is for (`aud`), so the key never signs a bare server value and a proof is only
 * good at the meshid it was made for.
 */
export const PROOF_CONTEXT = 'meshid-login-v1:';

const INFO = 'meshid login challenge v1';

/** The audience of one meshid installation: its namespace. Every replica of it answers to it. */
export function installationAudience(namespace: string): string {
  return `meshid:${namespace}`;
}

function mac(key: SessionKey, payload: string): Buffer {
  return createHmac('sha256', deriveKey(key, INFO)).update(payload).digest();
}

export interface IssuedChallenge {
  challenge: string;
  /** Which meshid the challenge, and so the proof signed over it, is good for. */
  audience: string;
  expiresAt: number;
}

/** What a verified challenge tells: its id, for recording its single use, and until when. */
export interface VerifiedChallenge {
  id: string;
  expiresAt: number;
}

/**
 * A stateless challenge: `<kid>.<payload>.<mac>`. Any replica can check it; it expires after
 * a minute and names its audience. Single use is recorded once a proof over it verifies.
 */
export function issueChallenge(keys: SessionKeySource, clock: Clock, audience: string): IssuedChallenge {
  const key = keys.current();
  const expiresAt = clock.now() + CHALLENGE_TTL_MS;
  const payload = Buffer.from(JSON.stringify({ n: randomBytes(16).toString('base64url'), exp: expiresAt, aud: audience })).toString('base64url');
  return { challenge: `${key.kid}.${payload}.${mac(key, payload).toString('base64url')}`, audience, expiresAt };
}

export function verifyChallenge(challenge: string, keys: SessionKeySource, clock: Clock, audience: string): VerifiedChallenge {
  const [kid, payload, given, ...rest] = challenge.split('.');
  const key = kid ? keys.find(kid) : undefined;
  if (!key || !payload || !given || rest.length > 0 || challenge.length > 1024) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge is malformed or from an unknown key');
  }
  const expected = mac(key, payload);
  const sent = Buffer.from(given, 'base64url');
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge was not issued by meshid');
  }
  const { n, exp, aud } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { n?: unknown; exp?: unknown; aud?: unknown };
  if (typeof exp !== 'number' || exp <= clock.now()) {
    throw new MeshidError('ERR_CHALLENGE_INVALID', 'login challenge expired; ask for a new one');
  }
  if (aud !== audience || typeof n !== 'string') {
    throw new MeshidError('ERR_CHALLENGE_INVALID', `login challenge was issued for another meshid (${String(aud)}), not ${audience}`);
  }
  return { id: n, expiresAt: exp };
}
