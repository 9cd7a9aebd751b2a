// User-token validation on one core (signature, claims and the revocation check) beside the
// raw RS256 verification it is built on, and issuing beside raw RS256 signing, in one run.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { KeyedIssuer, StaticPublicKeys, UserTokenValidator, signUserToken } from '../src/tokens/index.ts';
import { rate } from './lib/rate.ts';
import type { Benchmark } from './lib/types.ts';

const SECONDS = 3;
const REVOKED = 10_000;
const DISTINCT = 64;


export const benchmark: Benchmark = {
  name: 'tokens',
  async run() {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const revoked = new Set(Array.from({ length: REVOKED }, (_, i) => `revoked-${i}`));
    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: '1', key: publicKey }])], { isRevoked: (j) => revoked.has(j) });
    const token = signUserToken({ kid: '1', privateKey }, { name: 'john', groups: ['team-a', 'team-b'], validForMs: 3_600_000 });
    const [h, p, s] = token.split('.');
    const input = Buffer.from(`${h}.${p}`);
    const signature = Buffer.from(s ?? '', 'base64url');
    if (validator.validate(token).name !== 'mesh-system:john') throw new Error('token does not validate');

    const raw = rate(() => {
      if (!verify('sha256', input, publicKey, signature)) throw new Error('bad signature');
    }, SECONDS, 50);
    // First sight: a validator that remembers one token, cycling through many, never hits.
    const keys = [new StaticPublicKeys([{ kid: '1', key: publicKey }])];
    const forgetful = new UserTokenValidator(keys, { isRevoked: (j) => revoked.has(j) }, undefined, undefined, 1);
    const distinct = Array.from({ length: DISTINCT }, (_, i) => signUserToken({ kid: '1', privateKey }, { name: `user-${i}`, groups: ['team-a'], validForMs: 3_600_000 }));
    let next = 0;
    const validate = rate(() => forgetful.validate(distinct[next++ % DISTINCT] ?? ''), SECONDS, 50);
    // Seen before: the same token on every call, as a client sends it.
    validator.validate(token);
    const repeated = rate(() => validator.validate(token), SECONDS, 50);
    const issuer = new KeyedIssuer(() => ({ kid: '1', privateKey }));
    const rawSign = rate(() => sign('sha256', input, privateKey), 2, 50);
    const issue = rate(() => issuer.issue({ name: 'john', groups: ['team-a'], validForMs: 3_600_000 }), 2, 50);
    const ratio = validate / raw;
    return [
      {
        benchmark: 'tokens',
        measurement: `validate a user token first seen, on one core (hash, signature, claims, ${REVOKED} revoked ids)`,
        value: validate,
        unit: '/s',
        baseline: { label: 'raw RS256 verify (OpenSSL)', value: raw },
        goal: { text: '>= 0.65 of raw', met: ratio >= 0.65 },
      },
      {
        benchmark: 'tokens',
        measurement: 'validate a user token seen before, on one core (cache by SHA-256; expiry, revocation and key checked each time)',
        value: repeated,
        unit: '/s',
        baseline: { label: 'raw RS256 verify (OpenSSL)', value: raw },
        goal: { text: '>= 5x raw', met: repeated >= 5 * raw },
      },
      {
        benchmark: 'tokens',
        measurement: 'issue a user token on one core',
        value: issue,
        unit: '/s',
        baseline: { label: 'raw RS256 sign (OpenSSL)', value: rawSign },
      },
    ];
  },
};
