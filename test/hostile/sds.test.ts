// Hostile SDS traffic against a real SdsServer on a Unix socket (an in-memory CA behind it:
// the target is the agent's request handling). Random resource names, type URLs, nonces,
// versions, NACKs, node metadata and huge name lists, over StreamSecrets, DeltaSecrets and
// FetchSecrets, with any credential. Every call ends with an expected status, and every
// secret that comes back is one of the two the agent serves, for the caller's own identity.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metadata, status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { ROOT_RESOURCE, SDS_CREDENTIAL_HEADER, SECRET_TYPE_URL, WORKLOAD_RESOURCE, decodeSecret, type AnyMessage } from '../../src/agent/index.ts';
import { startHarness, type Harness } from '../agent/support.ts';
import { jwtLike, settings } from './arbitraries.ts';

const ENDINGS = new Set([status.OK, status.INVALID_ARGUMENT, status.UNAUTHENTICATED, status.PERMISSION_DENIED]);
const IDENTITIES = { web: { namespace: 'shop', serviceAccount: 'web' }, db: { namespace: 'shop', serviceAccount: 'db' } } as const;
type Who = keyof typeof IDENTITIES;

type Credential = { kind: 'none' } | { kind: 'token'; header: 'authorization' | 'binary'; token: string; who?: Who } | { kind: 'raw'; value: string };

const credential = fc.oneof(
  fc.constant<Credential>({ kind: 'none' }),
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom<Who>('web', 'db'), fc.constantFrom<'authorization' | 'binary'>('authorization', 'binary')).map(([who, header]): Credential => ({ kind: 'token', header, token: `token-${who}`, who })) },
  fc.tuple(jwtLike.filter((t) => /^[!-~]+$/.test(t)), fc.constantFrom<'authorization' | 'binary'>('authorization', 'binary')).map(([token, header]): Credential => ({ kind: 'token', header, token })),
  fc.constantFrom('Basic token-web', 'Bearer', 'bearer  token-web x', `Bearer ${'A'.repeat(20_000)}`).map((value): Credential => ({ kind: 'raw', value })),
);

function metadataOf(c: Credential): Metadata {
  const md = new Metadata();
  if (c.kind === 'token' && c.header === 'binary') md.set(SDS_CREDENTIAL_HEADER, Buffer.from(c.token));
  if (c.kind === 'token' && c.header === 'authorization') md.set('authorization', `Bearer ${c.token}`);
  if (c.kind === 'raw') md.set('authorization', c.value);
  return md;
}

const name = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(WORKLOAD_RESOURCE, ROOT_RESOURCE) }, fc.constantFrom('', 'Default', 'rootca', 'spiffe://cluster.local/ns/kube-system/sa/default', 'file-cert:/etc/passwd', 'default\u0000'), fc.string({ maxLength: 30 }));
const names = fc.oneof(
  { weight: 8, arbitrary: fc.array(name, { maxLength: 4 }) },
  fc.array(name, { minLength: 2_000, maxLength: 5_000 }),
  // Past what one status header can quote back: the refusal must still arrive.
  fc.integer({ min: 20_000, max: 25_000 }).map((n) => Array.from({ length: n }, (_, i) => `name-${i}`)),
);
const typeUrl = fc.oneof({ weight: 4, arbitrary: fc.constant(SECRET_TYPE_URL) }, fc.constantFrom('', 'type.googleapis.com/envoy.config.cluster.v3.Cluster', SECRET_TYPE_URL.toUpperCase()), fc.string({ maxLength: 40 }));
const nonce = fc.oneof({ weight: 3, arbitrary: fc.constant('') }, fc.string({ maxLength: 20 }), fc.constant('x'.repeat(10_000)));
const node = fc.option(
  fc.record({ id: fc.string({ maxLength: 40 }), cluster: fc.string({ maxLength: 20 }), metadata: fc.record({ fields: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 40 }).map((v) => ({ string_value: v })), { maxKeys: 5 }) }) }, { requiredKeys: [] }),
  { nil: null },
);
const errorDetail = fc.option(fc.record({ code: fc.integer({ min: 0, max: 16 }), message: fc.string({ maxLength: 200 }) }), { nil: null });

const sotwRequest = fc.record({ version_info: fc.string({ maxLength: 20 }), node, resource_names: names, type_url: typeUrl, response_nonce: nonce, error_detail: errorDetail });
const deltaRequest = fc.record({
  node,
  type_url: typeUrl,
  resource_names_subscribe: names,
  resource_names_unsubscribe: fc.array(name, { maxLength: 3 }),
  initial_resource_versions: fc.dictionary(name, fc.string({ maxLength: 10 }), { maxKeys: 3 }),
  response_nonce: nonce,
  error_detail: errorDetail,
});

interface Outcome {
  code: number;
  resources: { name: string; any: AnyMessage }[];
}

type StreamMethod<Req> = (md: Metadata) => ClientDuplexStream<Req, unknown>;

/** Writes every request, half-closes, and collects what comes back until the call ends. */
function stream<Req>(client: Client, method: 'StreamSecrets' | 'DeltaSecrets', md: Metadata, requests: Req[]): Promise<Outcome> {
  const call = (client as unknown as Record<string, StreamMethod<Req>>)[method]?.call(client, md);
  if (!call) throw new Error(`no ${method}`);
  const resources: Outcome['resources'] = [];
  return new Promise((resolve) => {
    const timer = setTimeout(() => call.cancel(), 10_000);
    call.on('data', (response: { resources: (AnyMessage | { name: string; resource: AnyMessage })[] }) => {
      for (const r of response.resources) resources.push('resource' in r ? { name: r.name, any: r.resource } : { name: decodeSecret(r.value).name, any: r });
    });
    call.on('error', () => undefined);
    call.on('status', (s: { code: number }) => {
      clearTimeout(timer);
      resolve({ code: s.code, resources });
    });
    for (const r of requests) call.write(r);
    call.end();
  });
}

function fetch(client: Client, md: Metadata, request: unknown): Promise<Outcome> {
  const method = (client as unknown as { FetchSecrets: (req: unknown, md: Metadata, opts: { deadline: number }, cb: (e: ServiceError | null, r?: { resources: AnyMessage[] }) => void) => void }).FetchSecrets.bind(client);
  return new Promise((resolve) => {
    method(request, md, { deadline: Date.now() + 10_000 }, (error, response) =>
      resolve(error ? { code: error.code, resources: [] } : { code: status.OK, resources: (response?.resources ?? []).map((any) => ({ name: decodeSecret(any.value).name, any })) }),
    );
  });
}

describe('hostile SDS requests on the agent socket (fast-check, seeded)', () => {
  let h: Harness;
  let client: Client;
  before(async () => {
    h = await startHarness();
    for (const [who, id] of Object.entries(IDENTITIES)) h.reviewer.add(`token-${who}`, id.namespace, id.serviceAccount);
    client = h.client();
  });
  after(async () => h.close());

  it('ends every call with an expected status and serves only default and ROOTCA, for the caller alone (1,500 cases)', async () => {
    const call = fc.oneof(
      fc.tuple(fc.constant('StreamSecrets' as const), fc.array(sotwRequest, { minLength: 1, maxLength: 3 })),
      fc.tuple(fc.constant('DeltaSecrets' as const), fc.array(deltaRequest, { minLength: 1, maxLength: 3 })),
      fc.tuple(fc.constant('FetchSecrets' as const), sotwRequest.map((r) => [r])),
    );
    await fc.assert(
      fc.asyncProperty(credential, call, async (who, [method, requests]) => {
        const md = metadataOf(who);
        const outcome = method === 'FetchSecrets' ? await fetch(client, md, requests[0]) : await stream(client, method, md, requests as unknown[]);
        const what = `${method} ended ${outcome.code} with ${outcome.resources.map((r) => r.name).join(',')} for ${JSON.stringify(who).slice(0, 100)}`;
        assert.ok(ENDINGS.has(outcome.code), what);
        const identity = who.kind === 'token' && who.who ? IDENTITIES[who.who] : undefined;
        if (!identity) assert.equal(outcome.resources.length, 0, `a secret without a known token: ${what}`);
        for (const r of outcome.resources) {
          assert.equal(r.any.type_url, SECRET_TYPE_URL, what);
          const secret = decodeSecret(r.any.value);
          assert.equal(secret.name, r.name, what);
          if (secret.name === ROOT_RESOURCE) continue;
          assert.equal(secret.name, WORKLOAD_RESOURCE, what);
          assert.ok('tls_certificate' in secret, what);
          const leaf = new X509Certificate(secret.tls_certificate.certificate_chain.inline_bytes);
          assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/${identity?.namespace ?? '?'}/sa/${identity?.serviceAccount ?? '?'}`, what);
        }
      }),
      settings(1500),
    );
  });
});
