import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { ServiceAccountTokenReviewer } from '../../src/kube/index.ts';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (sub: string): string => `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: 'https://kubernetes.default.svc', sub, exp: Math.floor(Date.now() / 1000) + 600 })}.c2lnbmF0dXJl`;

/** A stand-in apiserver that answers TokenReviews slowly (so calls overlap) and counts them. */
describe('ServiceAccountTokenReviewer: one TokenReview per token in flight', () => {
  let server: Server;
  let reviews = 0;
  let reviewer: ServiceAccountTokenReviewer;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        reviews += 1;
        const token = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { spec: { token: string } }).spec.token;
        const good = token === jwt('system:serviceaccount:ns:good');
        const status = good ? { authenticated: true, audiences: ['istio-ca'], user: { username: 'system:serviceaccount:ns:good' } } : { authenticated: false, error: 'invalid bearer token' };
        setTimeout(() => {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status }));
        }, 50);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kc = new KubeConfig();
    const { port } = server.address() as AddressInfo;
    kc.loadFromOptions({
      // The client refuses plain HTTP unless told not to verify TLS; this stand-in has no TLS.
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'admin' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    reviewer = new ServiceAccountTokenReviewer(kc);
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('answers concurrent calls with one token from one review, then from the cache', async () => {
    reviews = 0;
    const token = jwt('system:serviceaccount:ns:good');
    const callers = await Promise.all(Array.from({ length: 32 }, (_, i) => reviewer.review(token, `10.0.0.${i % 4}`)));
    assert.equal(reviews, 1);
    for (const caller of callers) assert.deepEqual(caller, { namespace: 'ns', serviceAccount: 'good' });
    await reviewer.review(token, '10.0.0.9');
    assert.equal(reviews, 1);
  });

  it('refuses every concurrent caller of a refused token, still with one review', async () => {
    reviews = 0;
    const token = jwt('system:serviceaccount:ns:bad');
    const results = await Promise.allSettled(Array.from({ length: 16 }, () => reviewer.review(token, '10.0.1.1')));
    assert.equal(reviews, 1);
    for (const result of results) assert.equal(result.status, 'rejected');
  });

  it('reviews different tokens separately', async () => {
    reviews = 0;
    await Promise.allSettled([reviewer.review(jwt('system:serviceaccount:ns:x'), '10.0.2.1'), reviewer.review(jwt('system:serviceaccount:ns:y'), '10.0.2.1')]);
    assert.equal(reviews, 2);
  });
});
