import 'reflect-metadata';
import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, sign, webcrypto } from 'node:crypto';
import { describe, it } from 'node:test';
import * as x509 from '@peculiar/x509';
import { ManualClock, MeshidError, isMeshidError } from '../../src/core/index.ts';
import { createAuthority, issueLeaf, type Authority, type KeyPairPem } from '../../src/pki/index.ts';
import {
  CHALLENGE_TTL_MS,
  LoginService,
  PROOF_CONTEXT,
  SESSION_TTL_MS,
  SessionTokens,
  StaticSessionKeys,
  newSessionKey,
  verifyCertificateProof,
  type Capabilities,
  type ClientCaSource,
  type Identity,
  type KubeReviews,
} from '../../src/authn/index.ts';
import { issueChallenge, verifyChallenge } from '../../src/authn/challenge.ts';

const DAY = 24 * 60 * 60 * 1000;
const AUD = 'meshid:test';
const challengeInvalid = (e: unknown): boolean => isMeshidError(e, 'ERR_CHALLENGE_INVALID');
const loginFailed = (e: unknown): boolean => isMeshidError(e, 'ERR_LOGIN_FAILED');

/** A signature over PROOF_CONTEXT + challenge, as the CLI makes it. */
function proofSignature(challenge: string, keyPem: string): string {
  return sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), keyPem).toString('base64');
}

function caSource(...pems: string[]): ClientCaSource & { calls: number } {
  const source = {
    calls: 0,
    roots: async (): Promise<X509Certificate[]> => {
      source.calls += 1;
      return pems.map((pem) => new X509Certificate(pem));
    },
  };
  return source;
}

/** An intermediate CA signed by `parent`, shaped like an Authority so issueLeaf can use it. */
async function intermediate(parent: Authority, commonName: string, isCa = true): Promise<Authority> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '0a' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex'),
    subject: `CN=${commonName}`,
    issuer: parent.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 30 * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: parent.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(isCa, undefined, true),
      new x509.KeyUsagesExtension(isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature, true),
      await x509.AuthorityKeyIdentifierExtension.create(parent.cert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return { keys, cert, certPem: cert.toString('pem'), keyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8}\n-----END PRIVATE KEY-----\n` };
}

describe('login challenge', () => {
  const start = Date.UTC(2030, 0, 1);

  it('verifies a challenge it issued, which expires after 60 s', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    const { challenge, expiresAt } = issueChallenge(keys, clock, AUD);
    assert.equal(expiresAt, start + CHALLENGE_TTL_MS);
    assert.equal(CHALLENGE_TTL_MS, 60_000);
    assert.doesNotThrow(() => verifyChallenge(challenge, keys, clock, AUD));
    clock.advance(CHALLENGE_TTL_MS - 1);
    assert.doesNotThrow(() => verifyChallenge(challenge, keys, clock, AUD));
  });

  it('issues a fresh challenge every time', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    assert.notEqual(issueChallenge(keys, clock, AUD).challenge, issueChallenge(keys, clock, AUD).challenge);
  });

  it('refuses a challenge once its 60 s are up', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    const { challenge } = issueChallenge(keys, clock, AUD);
    clock.advance(CHALLENGE_TTL_MS + 1000);
    assert.throws(() => verifyChallenge(challenge, keys, clock, AUD), challengeInvalid);
  });

  it('refuses a challenge whose mac was changed or truncated', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    const [kid, payload, mac = ''] = issueChallenge(keys, clock, AUD).challenge.split('.');
    const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    assert.throws(() => verifyChallenge(`${kid}.${payload}.${flipped}`, keys, clock, AUD), challengeInvalid);
    assert.throws(() => verifyChallenge(`${kid}.${payload}.${mac.slice(0, 20)}`, keys, clock, AUD), challengeInvalid);
    assert.throws(() => verifyChallenge(`${kid}.${payload}.`, keys, clock, AUD), challengeInvalid);
  });

  it('refuses a challenge whose payload was changed to live longer', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    const [kid, payload = '', mac] = issueChallenge(keys, clock, AUD).challenge.split('.');
    const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { n: string; exp: number };
    const longer = Buffer.from(JSON.stringify({ ...decoded, exp: decoded.exp + 365 * DAY })).toString('base64url');
    clock.advance(CHALLENGE_TTL_MS + 1000);
    assert.throws(() => verifyChallenge(`${kid}.${longer}.${mac}`, keys, clock, AUD), challengeInvalid);
  });

  it('refuses a challenge from another key, or from an unknown kid', () => {
    const clock = new ManualClock(start);
    const mine = new StaticSessionKeys();
    const theirs = issueChallenge(new StaticSessionKeys(), clock, AUD).challenge;
    assert.throws(() => verifyChallenge(theirs, mine, clock, AUD), challengeInvalid);
    const mineKid = mine.current().kid;
    const sameKid = issueChallenge(new StaticSessionKeys([{ kid: mineKid, secret: newSessionKey().secret }]), clock, AUD).challenge;
    assert.throws(() => verifyChallenge(sameKid, mine, clock, AUD), challengeInvalid);
  });

  it('refuses malformed challenges', () => {
    const keys = new StaticSessionKeys();
    const clock = new ManualClock(start);
    const good = issueChallenge(keys, clock, AUD).challenge;
    for (const bad of ['', '.', '..', 'a.b.c', `${good}.extra`, good.split('.').slice(0, 2).join('.'), good + 'x'.repeat(1024)]) {
      assert.throws(() => verifyChallenge(bad, keys, clock, AUD), challengeInvalid, bad.slice(0, 60));
    }
  });
});

describe('client certificate proof', async () => {
  const clusterCa = await createAuthority('cluster-client-ca');
  const otherCa = await createAuthority('some-other-ca');
  const alice = await issueLeaf(clusterCa, { commonName: 'alice', organizations: ['dev', 'ops'], usage: 'client' });
  const roots = caSource(clusterCa.certPem);
  const now = (): ManualClock => new ManualClock(Date.now());
  const challenge = 'the-challenge';
  const proof = (cert: KeyPairPem, overrides: { certificate?: string; signature?: string; challenge?: string } = {}): { certificate: string; challenge: string; signature: string } => ({
    certificate: cert.certPem,
    challenge,
    signature: proofSignature(challenge, cert.keyPem),
    ...overrides,
  });

  it('maps CN to the user and O to groups, adding system:authenticated', async () => {
    assert.deepEqual(await verifyCertificateProof(proof(alice), roots, now()), { name: 'alice', groups: ['dev', 'ops', 'system:authenticated'] });
  });

  it('gives a certificate without O only system:authenticated', async () => {
    const bare = await issueLeaf(clusterCa, { commonName: 'bare', usage: 'client' });
    assert.deepEqual(await verifyCertificateProof(proof(bare), roots, now()), { name: 'bare', groups: ['system:authenticated'] });
  });

  it('accepts a certificate for both server and client use', async () => {
    const both = await issueLeaf(clusterCa, { commonName: 'both', usage: 'both' });
    assert.equal((await verifyCertificateProof(proof(both), roots, now())).name, 'both');
  });

  it('accepts a proof when the certificate is one of several published client CAs', async () => {
    assert.equal((await verifyCertificateProof(proof(alice), caSource(otherCa.certPem, clusterCa.certPem), now())).name, 'alice');
  });

  it('refuses a signature over another challenge', async () => {
    await assert.rejects(verifyCertificateProof(proof(alice, { signature: proofSignature('another-challenge', alice.keyPem) }), roots, now()), loginFailed);
  });

  it('refuses a signature over the bare challenge, without the proof context', async () => {
    const bare = sign('sha256', Buffer.from(challenge), alice.keyPem).toString('base64');
    await assert.rejects(verifyCertificateProof(proof(alice, { signature: bare }), roots, now()), loginFailed);
  });

  it('refuses a signature made with another key', async () => {
    const mallory = await issueLeaf(clusterCa, { commonName: 'mallory', usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(alice, { signature: proofSignature(challenge, mallory.keyPem) }), roots, now()), loginFailed);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const stray = sign('sha256', Buffer.from(PROOF_CONTEXT + challenge), privateKey).toString('base64');
    await assert.rejects(verifyCertificateProof(proof(alice, { signature: stray }), roots, now()), loginFailed);
  });

  it('refuses an empty or garbage signature', async () => {
    for (const signature of ['', 'AAAA', '!!not base64!!']) {
      await assert.rejects(verifyCertificateProof(proof(alice, { signature }), roots, now()), loginFailed, signature);
    }
  });

  it('refuses a certificate from another CA, even with a valid signature', async () => {
    const outsider = await issueLeaf(otherCa, { commonName: 'alice', organizations: ['system:masters'], usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(outsider), roots, now()), loginFailed);
  });

  it('refuses a self-signed certificate that copies the CA name', async () => {
    const lookalike = await createAuthority('cluster-client-ca');
    const leaf = await issueLeaf(lookalike, { commonName: 'alice', usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(leaf), roots, now()), loginFailed);
  });

  it('refuses the CA certificate itself', async () => {
    await assert.rejects(verifyCertificateProof(proof(clusterCa), roots, now()), loginFailed);
  });

  it('refuses a server-only certificate', async () => {
    const server = await issueLeaf(clusterCa, { commonName: 'alice', usage: 'server' });
    await assert.rejects(verifyCertificateProof(proof(server), roots, now()), loginFailed);
  });

  it('refuses garbage or missing PEM', async () => {
    const garbage = '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n';
    for (const certificate of ['', 'not pem at all', garbage, alice.keyPem]) {
      await assert.rejects(verifyCertificateProof(proof(alice, { certificate }), roots, now()), loginFailed, certificate.slice(0, 40));
    }
  });

  it('refuses a chain of more than four certificates', async () => {
    const certificate = Array.from({ length: 5 }, () => alice.certPem).join('');
    await assert.rejects(verifyCertificateProof(proof(alice, { certificate }), roots, now()), loginFailed);
  });

  it('refuses an expired leaf', async () => {
    const clock = new ManualClock(Date.now() + 400 * DAY);
    await assert.rejects(verifyCertificateProof(proof(alice), roots, clock), loginFailed);
  });

  it('refuses a leaf that is not yet valid', async () => {
    const clock = new ManualClock(Date.now() - DAY);
    await assert.rejects(verifyCertificateProof(proof(alice), roots, clock), loginFailed);
  });

  it('refuses a valid leaf once the client CA that signed it has expired, as kube-apiserver does', async () => {
    const shortCa = await createAuthority('short-lived-client-ca', 1);
    const leaf = await issueLeaf(shortCa, { commonName: 'alice', usage: 'client', validDays: 30 });
    const inTwoDays = new ManualClock(Date.now() + 2 * DAY);
    await assert.rejects(verifyCertificateProof(proof(leaf), caSource(shortCa.certPem), inTwoDays), loginFailed);
  });

  it('refuses every certificate when the cluster publishes no client CA', async () => {
    await assert.rejects(verifyCertificateProof(proof(alice), caSource(), now()), loginFailed);
  });

  it('accepts a leaf sent with the intermediate CA that signed it', async () => {
    const mid = await intermediate(clusterCa, 'intermediate');
    const leaf = await issueLeaf(mid, { commonName: 'dave', organizations: ['qa'], usage: 'client' });
    const identity = await verifyCertificateProof(proof(leaf, { certificate: leaf.certPem + mid.certPem }), roots, now());
    assert.deepEqual(identity, { name: 'dave', groups: ['qa', 'system:authenticated'] });
  });

  it('refuses a leaf from an intermediate CA when the intermediate is left out', async () => {
    const mid = await intermediate(clusterCa, 'intermediate');
    const leaf = await issueLeaf(mid, { commonName: 'dave', usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(leaf), roots, now()), loginFailed);
  });

  it('refuses a certificate signed by a client leaf that is not a CA', async () => {
    const notCa = await intermediate(clusterCa, 'alice', false);
    const leaf = await issueLeaf(notCa, { commonName: 'admin', organizations: ['system:masters'], usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(leaf, { certificate: leaf.certPem + notCa.certPem }), roots, now()), loginFailed);
  });

  it('refuses an intermediate from another CA sent along with its leaf', async () => {
    const mid = await intermediate(otherCa, 'intermediate');
    const leaf = await issueLeaf(mid, { commonName: 'dave', usage: 'client' });
    await assert.rejects(verifyCertificateProof(proof(leaf, { certificate: leaf.certPem + mid.certPem + otherCa.certPem }), roots, now()), loginFailed);
  });
});

/** KubeReviews answered from memory: one good token, fixed capabilities, and a call log. */
class FakeReviews implements KubeReviews {
  readonly capabilityCalls: Identity[] = [];
  constructor(
    private readonly tokens: Record<string, Identity>,
    private readonly caps: Capabilities,
  ) {}

  async reviewToken(token: string): Promise<Identity> {
    const user = this.tokens[token];
    if (!user) throw new MeshidError('ERR_LOGIN_FAILED', 'Kubernetes did not accept the token');
    return user;
  }

  async capabilities(user: Identity): Promise<Capabilities> {
    this.capabilityCalls.push(user);
    return this.caps;
  }
}

describe('LoginService', async () => {
  const clusterCa = await createAuthority('cluster-client-ca');
  const aliceCert = await issueLeaf(clusterCa, { commonName: 'alice', organizations: ['dev'], usage: 'client' });
  const caps: Capabilities = { 'pods/list': true, 'usertokens.meshid.io/create': false };
  const bob: Identity = { name: 'bob', groups: ['ops', 'system:authenticated'], uid: 'bob-uid' };

  function service(): { login: LoginService; tokens: SessionTokens; reviews: FakeReviews; clientCa: ReturnType<typeof caSource>; clock: ManualClock } {
    const clock = new ManualClock(Date.now());
    const keys = new StaticSessionKeys();
    const tokens = new SessionTokens(keys, clock);
    const reviews = new FakeReviews({ 'good-token': bob }, caps);
    const clientCa = caSource(clusterCa.certPem);
    return { login: new LoginService({ reviews, clientCa, tokens, keys, clock }), tokens, reviews, clientCa, clock };
  }

  it('logs in with a bearer token: user from TokenReview, capabilities from SubjectAccessReview, a session', async () => {
    const { login, tokens, reviews, clock } = service();
    const result = await login.login({ type: 'bearer', token: 'good-token' });
    assert.deepEqual(result.user, bob);
    assert.deepEqual(result.capabilities, caps);
    assert.deepEqual(reviews.capabilityCalls, [bob]);
    assert.equal(result.expiresAt, clock.now() + SESSION_TTL_MS);
    const session = await tokens.verify(result.token);
    assert.deepEqual(session.user, bob);
    assert.deepEqual(session.capabilities, caps);
    assert.equal(await tokens.unwrap(result.wrappedToken), result.token);
  });

  it('refuses a bearer token Kubernetes does not accept, and asks for no capabilities', async () => {
    const { login, reviews } = service();
    await assert.rejects(login.login({ type: 'bearer', token: 'bad-token' }), loginFailed);
    assert.equal(reviews.capabilityCalls.length, 0);
  });

  it('logs in with a client certificate that signed its challenge', async () => {
    const { login, tokens, reviews } = service();
    const { challenge } = login.challenge();
    const result = await login.login({ type: 'certificate', certificate: aliceCert.certPem, challenge, signature: proofSignature(challenge, aliceCert.keyPem) });
    const alice = { name: 'alice', groups: ['dev', 'system:authenticated'] };
    assert.deepEqual(result.user, alice);
    assert.deepEqual(reviews.capabilityCalls, [alice]);
    assert.deepEqual((await tokens.verify(result.token)).user, alice);
  });

  it('refuses a certificate login with an expired challenge before looking at the certificate', async () => {
    const { login, clock, clientCa } = service();
    const { challenge } = login.challenge();
    clock.advance(CHALLENGE_TTL_MS + 1000);
    await assert.rejects(
      login.login({ type: 'certificate', certificate: aliceCert.certPem, challenge, signature: proofSignature(challenge, aliceCert.keyPem) }),
      challengeInvalid,
    );
    assert.equal(clientCa.calls, 0);
  });

  it('refuses a challenge issued by another meshid', async () => {
    const { login } = service();
    const { challenge } = service().login.challenge();
    await assert.rejects(
      login.login({ type: 'certificate', certificate: aliceCert.certPem, challenge, signature: proofSignature(challenge, aliceCert.keyPem) }),
      challengeInvalid,
    );
  });

  it('refuses a certificate login whose signature is over another challenge', async () => {
    const { login, reviews } = service();
    const { challenge } = login.challenge();
    const other = login.challenge().challenge;
    await assert.rejects(
      login.login({ type: 'certificate', certificate: aliceCert.certPem, challenge, signature: proofSignature(other, aliceCert.keyPem) }),
      loginFailed,
    );
    assert.equal(reviews.capabilityCalls.length, 0);
  });
});
