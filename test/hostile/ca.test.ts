// Hostile CreateCertificate calls over real gRPC/TLS against meshid's CA service: garbled and
// foreign CSRs, any validity_duration, an Istio-style ImpersonatedIdentity in the request, and
// hostile metadata (authorization variants, duplicates, oversized values, ClusterID, noise).
// Every answer is a certificate for exactly the identity a known token proves, or one of the
// refusals a client can branch on; never INTERNAL or UNKNOWN.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import fc from 'fast-check';
import { checkCsr } from '../../src/ca/index.ts';
import { startMemoryCa, type MemoryCa } from '../support/memory-ca.ts';
import { caClient, callCa, makeCsr, type CaClient } from '../support/workload.ts';
import { jwtLike, settings } from './arbitraries.ts';

const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const MAX_TTL_S = 7 * 24 * 3600;
const REFUSALS = new Set([status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.RESOURCE_EXHAUSTED]);
const TOKENS = { web: 'token-of-ca-work-web', db: 'token-of-ca-work-db' } as const;

/** Metadata values grpc-js can carry: printable ASCII. */
const printable = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const metadataKey = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,15}$/).filter((k) => !k.endsWith('-bin') && !k.startsWith('grpc-') && k !== 'authorization' && k !== 'te' && k !== 'content-type' && k !== 'user-agent');

type Auth =
  | { kind: 'none' }
  | { kind: 'value'; value: string; presented?: keyof typeof TOKENS; canonical: boolean };

const authorization = fc.oneof(
  fc.constant<Auth>({ kind: 'none' }),
  // Mostly a genuine credential, so that the CSR, lifetime and metadata checks behind it are reached.
  {
    weight: 5,
    arbitrary: fc.tuple(fc.constantFrom<keyof typeof TOKENS>('web', 'db'), fc.constantFrom('Bearer ', 'bearer ', 'BEARER   ')).map(([who, scheme]): Auth => ({ kind: 'value', value: `${scheme}${TOKENS[who]}`, presented: who, canonical: true })),
  },
  fc.tuple(fc.constantFrom<keyof typeof TOKENS>('web', 'db'), fc.constantFrom('Basic ', '', 'Bearer', 'Bearer  x ', 'Token ')).map(([who, scheme]): Auth => ({ kind: 'value', value: `${scheme}${TOKENS[who]}`, canonical: false })),
  jwtLike.filter((t) => /^[ -~]*$/.test(t)).map((t): Auth => ({ kind: 'value', value: `Bearer ${t}`, canonical: false })),
  // Two values folded into one, as an intermediary joins repeated headers (grpc-js sends only one authorization).
  fc.tuple(fc.constantFrom<keyof typeof TOKENS>('web', 'db'), fc.boolean()).map(([who, first]): Auth => {
    const values = first ? [`Bearer ${TOKENS[who]}`, 'Bearer forged'] : ['Bearer forged', `Bearer ${TOKENS[who]}`];
    return { kind: 'value', value: values.join(', '), canonical: false };
  }),
  fc.integer({ min: 9_000, max: 80_000 }).map((n): Auth => ({ kind: 'value', value: `Bearer ${'A'.repeat(n)}`, canonical: false })),
);

describe('hostile CreateCertificate calls (fast-check, seeded)', () => {
  let ca: MemoryCa;
  let client: CaClient;
  const csrs: Record<'web' | 'db' | 'foreign' | 'dns', string> = { web: '', db: '', foreign: '', dns: '' };
  before(async () => {
    ca = await startMemoryCa({ maxTtlSeconds: MAX_TTL_S });
    ca.tokens.set(TOKENS.web, { namespace: 'ca-work', serviceAccount: 'web' });
    ca.tokens.set(TOKENS.db, { namespace: 'ca-work', serviceAccount: 'db' });
    client = caClient(ca.address, ca.rootPem);
    csrs.web = (await makeCsr({ uris: [spiffe('ca-work', 'web')] })).csr;
    csrs.db = (await makeCsr()).csr;
    csrs.foreign = (await makeCsr({ uris: [spiffe('kube-system', 'default')] })).csr;
    csrs.dns = (await makeCsr({ uris: [spiffe('ca-work', 'web')], dns: ['evil.example'] })).csr;
  });
  after(async () => {
    client.close();
    await ca.close();
  });

  it('signs only for the identity a known token proves, and otherwise answers an expected gRPC refusal (1,500 cases)', async () => {
    const pemOf = (bytes: Uint8Array): string => `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(bytes).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const csr = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<keyof typeof csrs>('web', 'db', 'foreign', 'dns').map((k) => ({ kind: k, pem: csrs[k] })) },
      fc.string({ maxLength: 2000 }).map((pem) => ({ kind: 'garbled' as const, pem })),
      fc.uint8Array({ maxLength: 1500 }).map((b) => ({ kind: 'garbled' as const, pem: pemOf(b) })),
      fc.integer({ min: 17_000, max: 90_000 }).map((n) => ({ kind: 'garbled' as const, pem: 'A'.repeat(n) })),
    );
    const validity = fc.oneof(fc.integer({ min: -10, max: MAX_TTL_S }), fc.integer(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String));
    const impersonated = fc.option(fc.constantFrom(spiffe('kube-system', 'admin'), spiffe('ca-work', 'db'), 'anything'), { nil: undefined });
    const extra = fc.record({ clusterId: fc.option(fc.oneof(printable(40), fc.integer({ min: 9_000, max: 20_000 }).map((n) => 'c'.repeat(n))), { nil: undefined }), noise: fc.dictionary(metadataKey, printable(60), { maxKeys: 4 }) });

    await fc.assert(
      fc.asyncProperty(authorization, csr, validity, impersonated, extra, async (auth, request, ttl, impersonate, { clusterId, noise }) => {
        const body = { csr: request.pem, validity_duration: ttl, ...(impersonate ? { metadata: { fields: { ImpersonatedIdentity: { stringValue: impersonate } } } } : {}) };
        const md = new Metadata();
        if (auth.kind === 'value') md.set('authorization', auth.value);
        if (clusterId !== undefined) md.set('ClusterID', clusterId);
        for (const [k, v] of Object.entries(noise)) md.set(k, v);
        const res = await callCa(client, body, md);
        const what = `${JSON.stringify(res).slice(0, 300)} for ${JSON.stringify({ auth, csr: request.kind, ttl, impersonate, clusterId: clusterId?.length })}`;

        if (res.code !== undefined) {
          assert.ok(REFUSALS.has(res.code), what);
          // The simplest genuine request must not be refused: a known token, its own CSR, a lifetime in bounds, ordinary metadata.
          // An ImpersonatedIdentity is refused whatever it names: this CA trusts no node proxy.
          const plain = auth.kind === 'value' && auth.canonical && (clusterId?.length ?? 0) < 9_000 && impersonate === undefined;
          const own = request.kind === 'db' || (request.kind === 'web' && auth.kind === 'value' && auth.presented === 'web');
          assert.ok(!(plain && own && Number(ttl) <= MAX_TTL_S), `a genuine request was refused: ${what}`);
          return;
        }
        assert.ok(auth.kind !== 'none' && auth.presented !== undefined, `a certificate without a known token: ${what}`);
        const leaf = new X509Certificate(res.chain?.[0] ?? '');
        assert.equal(leaf.subjectAltName, `URI:${spiffe('ca-work', auth.presented)}`, what);
        assert.ok(leaf.publicKey.equals(checkCsr(request.pem, spiffe('ca-work', auth.presented)).publicKey), what);
        assert.ok(request.kind === 'db' || request.kind === 'web', what);
      }),
      settings(1500),
    );
  });
});
