// Hostile input against the parsers every credential goes through: user tokens, session
// tokens, wrapped tokens and workload CSRs. Seeded, so every run sees the same cases. The
// property: each input is either refused with a MeshidError carrying an expected code, or
// (for the genuine case the generator also makes) accepted; nothing else ever happens.
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/core/index.ts';
import { SessionTokens, StaticSessionKeys } from '../../src/authn/index.ts';
import { StaticPublicKeys, UserTokenValidator, noRevocations } from '../../src/tokens/index.ts';
import { checkCsr } from '../../src/ca/index.ts';
import { b64, refusedWith, refusedWithAsync, settings } from './arbitraries.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const NOW = Date.UTC(2026, 10, 23);

/** Headers and claims an attacker would try, signed by the right key, another key, or not at all. */
const forgedUserToken = fc
  .tuple(
    fc.record({ alg: fc.constantFrom('RS256', 'none', 'HS256', 'RS512', 'PS256'), kid: fc.oneof(fc.constant('1'), fc.constant('../1'), fc.string({ maxLength: 8 }), fc.integer()), crit: fc.constant(['exp']) }, { requiredKeys: ['alg'] }),
    fc.record(
      {
        Name: fc.oneof(fc.constant('system:admin'), fc.string({ maxLength: 20 }), fc.integer()),
        Groups: fc.oneof(fc.array(fc.oneof(fc.constant('system:masters'), fc.string({ maxLength: 10 }))), fc.string()),
        exp: fc.oneof(fc.integer({ min: 0, max: NOW / 1000 - 1 }), fc.string(), fc.constant(null)),
        nbf: fc.integer({ min: NOW / 1000 + 3600, max: NOW / 1000 + 10 ** 7 }),
        jti: fc.oneof(fc.uuid(), fc.constant(''), fc.integer()),
      },
      { requiredKeys: [] },
    ),
    fc.constantFrom('right-key', 'other-key', 'hmac-with-public-pem', 'garbage'),
  )
  .map(([header, claims, signer]) => {
    const input = `${b64(header)}.${b64(claims)}`;
    const signature =
      signer === 'right-key'
        ? sign('sha256', Buffer.from(input), privateKey)
        : signer === 'other-key'
          ? sign('sha256', Buffer.from(input), other)
          : signer === 'hmac-with-public-pem'
            ? Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }))
            : Buffer.from('garbage');
    return `${input}.${signature.toString('base64url')}`;
  });

describe('hostile input on the credential parsers (fast-check, seeded)', () => {
  it('refuses every forged user token with a token code (1,500 cases)', () => {
    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: '1', key: publicKey }])], noRevocations, new ManualClock(NOW));
    fc.assert(
      fc.property(forgedUserToken, (token) => refusedWith(['ERR_TOKEN_INVALID', 'ERR_TOKEN_EXPIRED'], () => validator.validate(token))),
      settings(1500),
    );
  });

  it('refuses arbitrary strings as user tokens (2,000 cases)', () => {
    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: '1', key: publicKey }])], noRevocations, new ManualClock(NOW));
    fc.assert(fc.property(fc.string({ maxLength: 2000 }), (token) => refusedWith(['ERR_TOKEN_INVALID'], () => validator.validate(token))), settings(2000));
  });

  it('refuses forged session and wrapped tokens (2,000 cases)', async () => {
    const tokens = new SessionTokens(new StaticSessionKeys(), new ManualClock(NOW));
    const shaped = fc.oneof(
      fc.string({ maxLength: 500 }),
      fc.tuple(fc.record({ alg: fc.constantFrom('HS256', 'none', 'RS256', 'dir'), kid: fc.string({ maxLength: 10 }), enc: fc.constantFrom('A256GCM', 'A128GCM') }, { requiredKeys: ['alg'] }), fc.jsonValue({ maxDepth: 2 }), fc.base64String({ maxLength: 80 })).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
      fc.array(fc.base64String({ maxLength: 40 }), { minLength: 5, maxLength: 5 }).map((parts) => parts.join('.')),
    );
    await fc.assert(
      fc.asyncProperty(shaped, async (token) => {
        await refusedWithAsync(['ERR_TOKEN_INVALID', 'ERR_TOKEN_EXPIRED', 'ERR_UNAUTHENTICATED'], () => tokens.verify(token));
        await refusedWithAsync(['ERR_WRAPPED_TOKEN_INVALID', 'ERR_WRAPPED_TOKEN_REPLAYED'], () => tokens.unwrap(token));
      }),
      settings(2000),
    );
  });

  it('refuses garbled CSRs with a CSR code, never another failure (2,000 cases)', () => {
    const pemOf = (bytes: Uint8Array): string => `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(bytes).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const input = fc.oneof(fc.string({ maxLength: 3000 }), fc.uint8Array({ maxLength: 2000 }).map(pemOf), fc.uint8Array({ minLength: 17_000, maxLength: 20_000 }).map(pemOf));
    fc.assert(
      fc.property(input, (csr) => refusedWith(['ERR_CSR_INVALID', 'ERR_CSR_TOO_LARGE', 'ERR_CSR_IDENTITY'], () => checkCsr(csr, 'spiffe://cluster.local/ns/a/sa/b'))),
      settings(2000),
    );
  });
});
