import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { SECRET_TYPE_URL } from '../../src/agent/index.ts';
import {
  ack,
  bearer,
  binaryCredential,
  eventually,
  fetchSecrets,
  openStream,
  pemBlocks,
  request,
  rootsOf,
  startHarness,
  workloadOf,
  type Harness,
} from './support.ts';

const SPIFFE = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

describe('SDS server: serving default and ROOTCA', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ intermediate: true });
  });
  after(async () => {
    await h.close();
  });

  it('serves a key and chain for the identity the token proves, and the roots, with a version and a nonce', async () => {
    const token = h.reviewer.add('token-web', 'shop', 'web');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default', 'ROOTCA']));
    const response = await stream.next();
    assert.equal(response.type_url, SECRET_TYPE_URL);
    assert.ok(response.version_info.length > 0);
    assert.ok(response.nonce.length > 0);
    assert.equal(response.resources.length, 2);

    const workload = workloadOf(response.resources[0]);
    assert.equal(workload.name, 'default');
    const chain = pemBlocks(workload.chainPem).map((p) => new X509Certificate(p));
    // Leaf, intermediate and root, as the CA answered and as Istio's agent serves `default`.
    assert.equal(chain.length, 3);
    const [leaf, intermediate, chainRoot] = chain as [X509Certificate, X509Certificate, X509Certificate];
    assert.equal(leaf.subjectAltName, `URI:${SPIFFE('shop', 'web')}`);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(workload.keyPem)), 'the key matches the certificate');
    assert.equal(createPrivateKey(workload.keyPem).asymmetricKeyType, 'ec');
    assert.ok(leaf.verify(intermediate.publicKey));

    const roots = rootsOf(response.resources[1]);
    assert.equal(roots.name, 'ROOTCA');
    const root = new X509Certificate(roots.trustedCa);
    assert.ok(intermediate.verify(root.publicKey), 'the chain verifies to the served root');
    assert.ok(chainRoot.raw.equals(root.raw), 'the chain ends with the root ROOTCA serves');

    // The CSR asked for nothing but the SPIFFE URI, under an empty subject.
    const csr = h.ca.csrs.at(-1);
    assert.ok(csr);
    assert.equal(csr.subject, '');
    assert.equal(csr.extensions.length, 1);
    assert.equal(csr.extensions[0]?.type, '2.5.29.17');
    assert.equal(csr.extensions[0]?.critical, true);
    assert.deepEqual(leaf.publicKey.export({ type: 'spki', format: 'der' }), Buffer.from(csr.publicKey.rawData));
    stream.close();
  });

  it('serves Envoy-style streams, one resource each, and never logs keys or tokens', async () => {
    const token = h.reviewer.add('token-api-secret-value', 'shop', 'api');
    const client = h.client();
    const certStream = openStream(client, bearer(token));
    const rootStream = openStream(client, bearer(token));
    certStream.send(request(['default']));
    rootStream.send(request(['ROOTCA']));
    const cert = await certStream.next();
    const root = await rootStream.next();
    assert.equal(cert.resources.length, 1);
    assert.equal(workloadOf(cert.resources[0]).name, 'default');
    assert.equal(rootsOf(root.resources[0]).trustedCa.trim(), h.ca.root.certPem.trim());
    const logs = h.lines.join('');
    assert.doesNotMatch(logs, /PRIVATE KEY/);
    assert.ok(!logs.includes(token));
    certStream.close();
    rootStream.close();
  });

  it('FetchSecrets answers both resources once', async () => {
    const token = h.reviewer.add('token-fetch', 'shop', 'fetch');
    const response = await fetchSecrets(h.client(), bearer(token), request(['ROOTCA', 'default']));
    assert.ok(response.version_info && response.nonce);
    // Canonical order whatever the order asked.
    assert.equal(workloadOf(response.resources[0]).name, 'default');
    assert.equal(rootsOf(response.resources[1]).name, 'ROOTCA');
    const leaf = new X509Certificate(pemBlocks(workloadOf(response.resources[0]).chainPem)[0] ?? '');
    assert.equal(leaf.subjectAltName, `URI:${SPIFFE('shop', 'fetch')}`);
  });

  it('accepts the token in istio_sds_credentials_header-bin as well as authorization: Bearer', async () => {
    const token = h.reviewer.add('token-binary', 'shop', 'binary');
    const stream = openStream(h.client(), binaryCredential(token));
    stream.send(request(['default']));
    const leaf = new X509Certificate(pemBlocks(workloadOf((await stream.next()).resources[0]).chainPem)[0] ?? '');
    assert.equal(leaf.subjectAltName, `URI:${SPIFFE('shop', 'binary')}`);
    stream.close();
  });
});

describe('SDS server: the xDS rules', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('does not answer an ACK', async () => {
    const token = h.reviewer.add('token-ack', 'rules', 'ack');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default']));
    const first = await stream.next();
    stream.send(ack(first, ['default']));
    await stream.nothingFor(300);
    stream.close();
  });

  it('logs a NACK without key material and does not send the rejected version again', async () => {
    const token = h.reviewer.add('token-nack', 'rules', 'nack');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default']));
    const first = await stream.next();
    const keyPem = workloadOf(first.resources[0]).keyPem;
    stream.send(
      request(['default'], {
        version_info: '',
        response_nonce: first.nonce,
        error_detail: { code: 3, message: `Failed to load private key: ${keyPem}` },
      }),
    );
    await stream.nothingFor(300);
    await eventually(() => h.lines.some((l) => l.includes('NACK')), 2_000, 'the NACK log line');
    const line = h.lines.find((l) => l.includes('NACK')) ?? '';
    assert.match(line, /"level":40/);
    assert.ok(line.includes(first.version_info), 'the log names the rejected version');
    assert.doesNotMatch(line, /PRIVATE KEY|BEGIN/);
    assert.doesNotMatch(h.lines.join(''), /PRIVATE KEY/);

    // A request re-sent after the NACK (same nonce, no error) asks nothing new: still silent.
    stream.send(request(['default'], { response_nonce: first.nonce }));
    await stream.nothingFor(200);
    // A new version is sent.
    await h.server.rotateCertificates();
    const renewed = await stream.next();
    assert.notEqual(renewed.version_info, first.version_info);
    stream.close();
  });

  it('ignores a request with a stale nonce, and answers the same request with the current one', async () => {
    const token = h.reviewer.add('token-stale', 'rules', 'stale');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default']));
    const first = await stream.next();
    stream.send(ack(first, ['default']));
    await h.server.rotateCertificates();
    const second = await stream.next();
    assert.notEqual(second.nonce, first.nonce);
    // Asks for ROOTCA too, but answers the first response: stale, so ignored.
    stream.send(request(['default', 'ROOTCA'], { version_info: first.version_info, response_nonce: first.nonce }));
    await stream.nothingFor(300);
    stream.send(request(['default', 'ROOTCA'], { version_info: second.version_info, response_nonce: second.nonce }));
    const third = await stream.next();
    assert.equal(third.resources.length, 2);
    assert.equal(rootsOf(third.resources[1]).name, 'ROOTCA');
    assert.equal(new Set([first.nonce, second.nonce, third.nonce]).size, 3, 'nonces are unique');
    stream.close();
  });

  it('ends a stream that asks for an unknown resource with INVALID_ARGUMENT naming it', async () => {
    const token = h.reviewer.add('token-unknown', 'rules', 'unknown');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default', 'file-cert:/etc/certs/cert.pem']));
    const ended = await stream.status();
    assert.equal(ended.code, status.INVALID_ARGUMENT);
    assert.match(ended.details ?? '', /ERR_SDS_UNKNOWN_RESOURCE/);
    assert.match(ended.details ?? '', /file-cert:\/etc\/certs\/cert\.pem/);
  });

  it('ends a stream that names no resource with INVALID_ARGUMENT', async () => {
    const token = h.reviewer.add('token-empty', 'rules', 'empty');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request([]));
    const ended = await stream.status();
    assert.equal(ended.code, status.INVALID_ARGUMENT);
    assert.match(ended.details ?? '', /default.*ROOTCA/);
  });

  it('refuses an unknown resource in FetchSecrets with INVALID_ARGUMENT', async () => {
    const token = h.reviewer.add('token-fetch-unknown', 'rules', 'fetch-unknown');
    await assert.rejects(fetchSecrets(h.client(), bearer(token), request(['nope'])), (error: ServiceError) => {
      assert.equal(error.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /"nope"/);
      return true;
    });
  });
});

describe('SDS server: credentials', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('ends a stream without a token with UNAUTHENTICATED, saying where the token goes', async () => {
    const bare = openStream(h.client(), new Metadata());
    bare.send(request(['default']));
    const ended = await bare.status();
    assert.equal(ended.code, status.UNAUTHENTICATED);
    assert.match(ended.details ?? '', /istio_sds_credentials_header-bin/);
    assert.equal(h.ca.calls, 0);
  });

  it('ends a stream whose token the reviewer refuses with UNAUTHENTICATED, before any CSR', async () => {
    const stream = openStream(h.client(), bearer('not-a-known-token'));
    stream.send(request(['default']));
    const ended = await stream.status();
    assert.equal(ended.code, status.UNAUTHENTICATED);
    assert.equal(h.ca.calls, 0);
  });

  it('refuses a malformed authorization header with UNAUTHENTICATED', async () => {
    const md = new Metadata();
    md.set('authorization', 'Basic dXNlcjpwYXNz');
    const stream = openStream(h.client(), md);
    stream.send(request(['ROOTCA']));
    const ended = await stream.status();
    assert.equal(ended.code, status.UNAUTHENTICATED);
    assert.match(ended.details ?? '', /Bearer/);
  });

  it('refuses FetchSecrets without a token with UNAUTHENTICATED', async () => {
    await assert.rejects(fetchSecrets(h.client(), new Metadata(), request(['ROOTCA'])), (error: ServiceError) => error.code === status.UNAUTHENTICATED);
  });

  it('answers UNAVAILABLE when the reviewer cannot tell', async () => {
    const token = h.reviewer.add('token-kube-down', 'creds', 'kube-down');
    h.reviewer.down = true;
    try {
      const stream = openStream(h.client(), bearer(token));
      stream.send(request(['default']));
      assert.equal((await stream.status()).code, status.UNAVAILABLE);
    } finally {
      h.reviewer.down = false;
    }
  });
});

describe('SDS server: one certificate per identity', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  it('gives concurrent first streams of one identity the same certificate from exactly one CSR', async () => {
    const tokens = ['pod-1', 'pod-2', 'pod-3', 'pod-4'].map((pod) => h.reviewer.add(`token-${pod}`, 'cache', 'worker'));
    const before = h.ca.calls;
    h.ca.hold();
    const streams = tokens.map((t) => openStream(h.client(), bearer(t)));
    for (const s of streams) s.send(request(['default']));
    await eventually(() => h.ca.calls > before, 5_000, 'the CSR');
    await new Promise((r) => setTimeout(r, 100)); // every stream has asked by now
    h.ca.release();
    const answers = await Promise.all(streams.map((s) => s.next()));
    assert.equal(h.ca.calls - before, 1);
    const keys = new Set(answers.map((a) => workloadOf(a.resources[0]).keyPem));
    const versions = new Set(answers.map((a) => a.version_info));
    assert.equal(keys.size, 1);
    assert.equal(versions.size, 1);
    // A later stream and a fetch of the same identity reuse it too.
    const late = openStream(h.client(), bearer(tokens[0] ?? ''));
    late.send(request(['default']));
    assert.equal((await late.next()).version_info, answers[0]?.version_info);
    const fetched = await fetchSecrets(h.client(), bearer(tokens[1] ?? ''), request(['default']));
    assert.equal(fetched.version_info, answers[0]?.version_info);
    assert.equal(h.ca.calls - before, 1);
    for (const s of [...streams, late]) s.close();
  });

  it('gives different identities different keys', async () => {
    const a = h.reviewer.add('token-id-a', 'cache', 'a');
    const b = h.reviewer.add('token-id-b', 'cache', 'b');
    const [ra, rb] = await Promise.all([fetchSecrets(h.client(), bearer(a), request(['default'])), fetchSecrets(h.client(), bearer(b), request(['default']))]);
    assert.notEqual(workloadOf(ra.resources[0]).keyPem, workloadOf(rb.resources[0]).keyPem);
  });

  it('counts its streams', async () => {
    const token = h.reviewer.add('token-count', 'cache', 'count');
    const stream = openStream(h.client(), bearer(token));
    stream.send(request(['default']));
    await stream.next();
    assert.ok(h.server.stats().streams >= 1);
    stream.close();
    await eventually(() => h.server.stats().streams === 0, 2_000, 'the stream to be forgotten');
  });
});

describe('SDS server: what it asks of the CA and checks in its answer', () => {
  it('refuses a certificate for another identity or another key with PERMISSION_DENIED, and caches nothing', async () => {
    const h = await startHarness();
    try {
      for (const tamper of ['identity', 'key'] as const) {
        h.ca.tamper = tamper;
        const token = h.reviewer.add(`token-tamper-${tamper}`, 'tamper', tamper);
        const stream = openStream(h.client(), bearer(token));
        stream.send(request(['default']));
        const ended = await stream.status();
        assert.equal(ended.code, status.PERMISSION_DENIED);
        assert.match(ended.details ?? '', /ERR_CSR_IDENTITY/);
      }
      assert.equal(h.server.stats().identities, 0);
      h.ca.tamper = undefined;
      const ok = await fetchSecrets(h.client(), bearer('token-tamper-key'), request(['default']));
      assert.equal(ok.resources.length, 1);
    } finally {
      await h.close();
    }
  });

  it('asks for the configured trust domain and TTL', async () => {
    const h = await startHarness({ trustDomain: 'prod.example.org', server: { trustDomain: 'prod.example.org', certificateTtlSeconds: 7200 } });
    try {
      const token = h.reviewer.add('token-td', 'td', 'web');
      const response = await fetchSecrets(h.client(), bearer(token), request(['default']));
      const leaf = new X509Certificate(pemBlocks(workloadOf(response.resources[0]).chainPem)[0] ?? '');
      assert.equal(leaf.subjectAltName, 'URI:spiffe://prod.example.org/ns/td/sa/web');
      assert.equal(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom), 7200 * 1000);
      // Renewal at half of what was granted.
      assert.equal(h.scheduler.nextIn(), 3600 * 1000);
    } finally {
      await h.close();
    }
  });
});

describe('SDS server: RSA keys', () => {
  it('makes RSA-2048 keys when asked', async () => {
    const h = await startHarness({ server: { keyType: 'rsa' } });
    try {
      const token = h.reviewer.add('token-rsa', 'rsa', 'legacy');
      const response = await fetchSecrets(h.client(), bearer(token), request(['default']));
      const key = createPrivateKey(workloadOf(response.resources[0]).keyPem);
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
      const leaf = new X509Certificate(pemBlocks(workloadOf(response.resources[0]).chainPem)[0] ?? '');
      assert.ok(leaf.checkPrivateKey(key));
    } finally {
      await h.close();
    }
  });
});
