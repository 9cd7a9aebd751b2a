// Logins per second by token and by client certificate, beside what they are made of:
// a TokenReview straight to kube-apiserver, and the raw ECDSA sign+verify of the proof.
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { PROOF_CONTEXT } from '../src/authn/index.ts';
import { httpsClient, runLoad } from './lib/load.ts';
import { loginTasks } from './lib/meshid-calls.ts';
import { sharedPlayground, userTls } from './lib/playground.ts';
import type { Benchmark, Row } from './lib/types.ts';

const CONCURRENCY = 8;
const DURATION_MS = 6_000;

export const benchmark: Benchmark = {
  name: 'login',
  async run() {
    const pg = await sharedPlayground();
    const bob = await userTls(pg.env.kubeconfigs.bob);
    const admin = await userTls(pg.env.kubeconfigs.admin);
    if (!admin.cert || !admin.key) throw new Error('admin lacks a client certificate');
    const apiserver = httpsClient({ ca: admin.ca, cert: admin.cert, key: admin.key });
    const { byToken: tokenLogin, byCertificate: certLogin } = await loginTasks(pg);
    const tokenReview = async (): Promise<boolean> =>
      (await apiserver('POST', new URL('/apis/authentication.k8s.io/v1/tokenreviews', admin.server), {}, JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: bob.token } }))).status === 201;
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.from(PROOF_CONTEXT + 'x'.repeat(120));
    const crypto = async (): Promise<boolean> => verify('sha256', data, keys.publicKey, sign('sha256', data, keys.privateKey));

    const load = (task: () => Promise<boolean>, concurrency = CONCURRENCY) => runLoad({ concurrency, durationMs: DURATION_MS, maxRequests: 200_000, task });
    await load(tokenLogin);
    const byToken = await load(tokenLogin);
    const reviews = await load(tokenReview);
    const byCert = await load(certLogin);
    const limit = await load(crypto, 1);
    const errors = byToken.errors + reviews.errors + byCert.errors;
    const rows: Row[] = [
      {
        benchmark: 'login',
        measurement: `by bearer token, ${CONCURRENCY} concurrent (p50 ${byToken.p50Ms.toFixed(1)} ms; reviews cached ${10} s)`,
        value: byToken.perSecond,
        unit: '/s',
        baseline: { label: 'TokenReview straight to kube-apiserver', value: reviews.perSecond },
        goal: { text: '>= 300/s', met: byToken.perSecond >= 300 },
      },
      {
        benchmark: 'login',
        measurement: `by client certificate (challenge + proof), ${CONCURRENCY} concurrent (p50 ${byCert.p50Ms.toFixed(1)} ms)`,
        value: byCert.perSecond,
        unit: '/s',
        baseline: { label: 'raw ECDSA P-256 sign+verify, one core', value: limit.perSecond },
        goal: { text: '>= 300/s', met: byCert.perSecond >= 300 },
      },
    ];
    if (errors > 0) rows.push({ benchmark: 'login', measurement: 'failed logins', value: errors, unit: '', goal: { text: '0', met: false } });
    return rows;
  },
};
