// The CA's node authorization for ambient node proxies (ztunnel's ImpersonatedIdentity): the
// decision with pods held in memory, then through the real CreateCertificate service over
// gRPC/TLS with an in-memory reviewer (test/support/memory-ca.ts).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Metadata, status } from '@grpc/grpc-js';
import { isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { NodeImpersonation, parseNodeAccount, type NodePods } from '../../src/ca/index.ts';
import type { ReviewedCaller, WorkloadIdentity } from '../../src/contract/index.ts';
import type { SecurityEvent } from '../../src/kube/index.ts';
import { startMemoryCa, type MemoryCa } from '../support/memory-ca.ts';
import { caClient, callCa, makeCsr, type CaClient } from '../support/workload.ts';

const spiffe = (ns: string, sa: string, td = 'cluster.local'): string => `spiffe://${td}/ns/${ns}/sa/${sa}`;

interface MemoryPod extends WorkloadIdentity {
  name: string;
  uid: string;
  node: string;
  phase?: string;
}

/** Pods in memory, answering as KubeNodePods does; it counts lookups, to show what was never asked. */
class MemoryPods implements NodePods {
  lookups = 0;
  constructor(readonly pods: MemoryPod[]) {}
  async nodeOf(namespace: string, name: string, uid?: string): Promise<string | undefined> {
    this.lookups += 1;
    const pod = this.pods.find((p) => p.namespace === namespace && p.name === name);
    return pod && (uid === undefined || pod.uid === uid) ? pod.node : undefined;
  }
  async runsOn(node: string, identity: WorkloadIdentity): Promise<boolean> {
    this.lookups += 1;
    return this.pods.some((p) => p.node === node && p.namespace === identity.namespace && p.serviceAccount === identity.serviceAccount && p.phase !== 'Failed' && p.phase !== 'Succeeded');
  }
}

const POD_LIST: MemoryPod[] = [
  { namespace: 'istio-system', serviceAccount: 'ztunnel', name: 'ztunnel-a', uid: 'uid-zt-a', node: 'node-a' },
  { namespace: 'istio-system', serviceAccount: 'ztunnel', name: 'ztunnel-b', uid: 'uid-zt-b', node: 'node-b' },
  { namespace: 'foo', serviceAccount: 'httpbin', name: 'httpbin-1', uid: 'uid-h', node: 'node-a' },
  { namespace: 'foo', serviceAccount: 'sleep', name: 'sleep-1', uid: 'uid-s', node: 'node-a' },
  { namespace: 'bar', serviceAccount: 'httpbin', name: 'httpbin-2', uid: 'uid-h2', node: 'node-b' },
  { namespace: 'bar', serviceAccount: 'job', name: 'job-1', uid: 'uid-j', node: 'node-a', phase: 'Succeeded' },
];

/** ztunnel on node-a, as a pod-bound token on Kubernetes 1.32+ proves it (node in the extras). */
const ZTUNNEL_A: ReviewedCaller = { namespace: 'istio-system', serviceAccount: 'ztunnel', pod: { name: 'ztunnel-a', uid: 'uid-zt-a', nodeName: 'node-a' } };

async function refusal(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isMeshidError(error), String(error));
    return error.code;
  }
  assert.fail('expected a refusal');
}

describe('NodeImpersonation (Istio node authorization)', () => {
  const make = (pods = new MemoryPods(POD_LIST), trustedNodeAccounts = ['istio-system/ztunnel']) => ({ pods, authz: new NodeImpersonation({ trustedNodeAccounts, trustDomain: 'cluster.local', pods }) });

  it('grants a node proxy the identity of a pod on its own node', async () => {
    const { authz } = make();
    assert.deepEqual(await authz.authorize(ZTUNNEL_A, spiffe('foo', 'httpbin')), { namespace: 'foo', serviceAccount: 'httpbin' });
    assert.deepEqual(await authz.authorize(ZTUNNEL_A, spiffe('foo', 'sleep')), { namespace: 'foo', serviceAccount: 'sleep' });
  });

  it('refuses an identity whose pods run only on another node, or have finished', async () => {
    const { authz } = make();
    assert.equal(await refusal(authz.authorize(ZTUNNEL_A, spiffe('bar', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
    assert.equal(await refusal(authz.authorize(ZTUNNEL_A, spiffe('bar', 'job'))), 'ERR_NODE_IMPERSONATION_DENIED');
    assert.equal(await refusal(authz.authorize(ZTUNNEL_A, spiffe('kube-system', 'admin'))), 'ERR_NODE_IMPERSONATION_DENIED');
  });

  it('refuses every caller that is not a node proxy before it looks at any pod', async () => {
    const { authz, pods } = make();
    const sleep: ReviewedCaller = { namespace: 'foo', serviceAccount: 'sleep', pod: { name: 'sleep-1', uid: 'uid-s', nodeName: 'node-a' } };
    assert.equal(await refusal(authz.authorize(sleep, spiffe('foo', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
    // Not even its own identity through the field: only node proxies may use it, as in istiod.
    assert.equal(await refusal(authz.authorize(sleep, spiffe('foo', 'sleep'))), 'ERR_NODE_IMPERSONATION_DENIED');
    // A ztunnel name in another namespace is not the trusted one.
    assert.equal(await refusal(authz.authorize({ ...ZTUNNEL_A, namespace: 'foo' }, spiffe('foo', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
    assert.equal(pods.lookups, 0);
  });

  it('refuses a name that is no workload SPIFFE ID, and another trust domain', async () => {
    const { authz } = make();
    for (const bad of ['anything', 'spiffe://cluster.local/ns/foo', 'spiffe://cluster.local/ns/Foo/sa/httpbin', `${spiffe('foo', 'httpbin')}/x`]) {
      assert.equal(await refusal(authz.authorize(ZTUNNEL_A, bad)), 'ERR_INVALID_ARGUMENT', bad);
    }
    assert.equal(await refusal(authz.authorize(ZTUNNEL_A, spiffe('foo', 'httpbin', 'other.domain'))), 'ERR_NODE_IMPERSONATION_DENIED');
  });

  it('refuses a node proxy whose token does not prove its pod', async () => {
    const { authz } = make();
    assert.equal(await refusal(authz.authorize({ namespace: 'istio-system', serviceAccount: 'ztunnel' }, spiffe('foo', 'httpbin'))), 'ERR_UNAUTHENTICATED');
  });

  it('finds the node from the bound pod when the token does not name it (Kubernetes before 1.32), and checks its uid', async () => {
    const { authz, pods } = make();
    const older: ReviewedCaller = { namespace: 'istio-system', serviceAccount: 'ztunnel', pod: { name: 'ztunnel-b', uid: 'uid-zt-b' } };
    assert.deepEqual(await authz.authorize(older, spiffe('bar', 'httpbin')), { namespace: 'bar', serviceAccount: 'httpbin' });
    assert.equal(await refusal(authz.authorize(older, spiffe('foo', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
    // A pod of the same name made again is not the one the token was issued for.
    assert.equal(await refusal(authz.authorize({ ...older, pod: { name: 'ztunnel-b', uid: 'uid-old' } }, spiffe('bar', 'httpbin'))), 'ERR_UNAUTHENTICATED');
    assert.equal(await refusal(authz.authorize({ ...older, pod: { name: 'gone' } }, spiffe('bar', 'httpbin'))), 'ERR_UNAUTHENTICATED');
    assert.ok(pods.lookups > 0);
  });

  it('trusts exactly the configured accounts, and none when the list is empty', async () => {
    const custom = make(new MemoryPods([...POD_LIST, { namespace: 'mesh', serviceAccount: 'node-proxy', name: 'np', uid: 'u', node: 'node-a' }]), ['mesh/node-proxy']);
    assert.deepEqual(await custom.authz.authorize({ namespace: 'mesh', serviceAccount: 'node-proxy', pod: { name: 'np', nodeName: 'node-a' } }, spiffe('foo', 'httpbin')), { namespace: 'foo', serviceAccount: 'httpbin' });
    assert.equal(await refusal(custom.authz.authorize(ZTUNNEL_A, spiffe('foo', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
    assert.equal(await refusal(make(undefined, []).authz.authorize(ZTUNNEL_A, spiffe('foo', 'httpbin'))), 'ERR_NODE_IMPERSONATION_DENIED');
  });

  it('takes accounts only as namespace/serviceaccount', () => {
    assert.deepEqual(parseNodeAccount('istio-system/ztunnel'), { namespace: 'istio-system', serviceAccount: 'ztunnel' });
    for (const bad of ['ztunnel', 'istio-system/', '/ztunnel', 'a/b/c', 'Istio-System/ztunnel']) assert.equal(parseNodeAccount(bad), undefined, bad);
    assert.throws(() => new NodeImpersonation({ trustedNodeAccounts: ['ztunnel'], trustDomain: 'cluster.local', pods: new MemoryPods([]) }), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });
});

describe('CreateCertificate with ImpersonatedIdentity', () => {
  let ca: MemoryCa;
  let client: CaClient;
  const events: SecurityEvent[] = [];
  const impersonating = (identity: unknown): { metadata: { fields: Record<string, unknown> } } => ({ metadata: { fields: { ImpersonatedIdentity: identity } } });
  const bearer = (token: string): Metadata => {
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  };

  before(async () => {
    ca = await startMemoryCa({ impersonation: new NodeImpersonation({ trustedNodeAccounts: ['istio-system/ztunnel'], trustDomain: 'cluster.local', pods: new MemoryPods(POD_LIST) }), events: { record: (e) => events.push(e) } });
    ca.tokens.set('ztunnel-a', ZTUNNEL_A);
    ca.tokens.set('sleep', { namespace: 'foo', serviceAccount: 'sleep', pod: { name: 'sleep-1', uid: 'uid-s', nodeName: 'node-a' } });
    client = caClient(ca.address, ca.rootPem);
  });
  after(async () => {
    client.close();
    await ca.close();
  });

  it('signs the impersonated identity for a node proxy, the CSR naming it as ztunnel does', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('foo', 'httpbin')] });
    const res = await callCa(client, { csr, validity_duration: 3600, ...impersonating({ stringValue: spiffe('foo', 'httpbin') }) }, bearer('ztunnel-a'));
    assert.equal(res.code, undefined, res.details);
    assert.equal(new X509Certificate(res.chain?.[0] ?? '').subjectAltName, `URI:${spiffe('foo', 'httpbin')}`);
  });

  it('refuses a CSR that names another identity than the impersonated one', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('istio-system', 'ztunnel')] });
    const res = await callCa(client, { csr, ...impersonating({ stringValue: spiffe('foo', 'httpbin') }) }, bearer('ztunnel-a'));
    assert.equal(res.code, status.PERMISSION_DENIED);
    assert.match(res.details ?? '', /ERR_CSR_IDENTITY/);
  });

  it('answers PERMISSION_DENIED and records a Warning event for a workload that is no node proxy', async () => {
    events.length = 0;
    const { csr } = await makeCsr({ uris: [spiffe('foo', 'httpbin')] });
    const res = await callCa(client, { csr, ...impersonating({ stringValue: spiffe('foo', 'httpbin') }) }, bearer('sleep'));
    assert.equal(res.code, status.PERMISSION_DENIED);
    assert.match(res.details ?? '', /\(ERR_NODE_IMPERSONATION_DENIED\)$/);
    assert.equal(events.length, 1);
    assert.equal(events[0]?.reason, 'NodeImpersonationRefused');
    assert.equal(events[0]?.type, 'Warning');
    assert.equal(events[0]?.user, 'system:serviceaccount:foo:sleep');
    assert.match(events[0]?.message ?? '', /spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin/);
  });

  it('answers PERMISSION_DENIED for an identity with no pod on the proxy\'s node', async () => {
    const { csr } = await makeCsr({ uris: [spiffe('bar', 'httpbin')] });
    const res = await callCa(client, { csr, ...impersonating({ stringValue: spiffe('bar', 'httpbin') }) }, bearer('ztunnel-a'));
    assert.equal(res.code, status.PERMISSION_DENIED);
    assert.match(res.details ?? '', /ERR_NODE_IMPERSONATION_DENIED/);
  });

  it('answers INVALID_ARGUMENT for a value that is not a SPIFFE ID string, and ignores an empty one as istiod does', async () => {
    const { csr } = await makeCsr();
    const number = await callCa(client, { csr, ...impersonating({ numberValue: 3 }) }, bearer('ztunnel-a'));
    assert.equal(number.code, status.INVALID_ARGUMENT);
    assert.match(number.details ?? '', /ERR_INVALID_ARGUMENT/);
    const garbage = await callCa(client, { csr, ...impersonating({ stringValue: 'httpbin' }) }, bearer('ztunnel-a'));
    assert.equal(garbage.code, status.INVALID_ARGUMENT);
    const empty = await callCa(client, { csr, ...impersonating({ stringValue: '' }) }, bearer('ztunnel-a'));
    assert.equal(empty.code, undefined, empty.details);
    assert.equal(new X509Certificate(empty.chain?.[0] ?? '').subjectAltName, `URI:${spiffe('istio-system', 'ztunnel')}`);
  });

  it('refuses every impersonation when the CA trusts no node proxy', async () => {
    const plain = await startMemoryCa();
    plain.tokens.set('ztunnel-a', ZTUNNEL_A);
    const other = caClient(plain.address, plain.rootPem);
    try {
      const { csr } = await makeCsr({ uris: [spiffe('foo', 'httpbin')] });
      const res = await callCa(other, { csr, ...impersonating({ stringValue: spiffe('foo', 'httpbin') }) }, bearer('ztunnel-a'));
      assert.equal(res.code, status.PERMISSION_DENIED);
      assert.match(res.details ?? '', /ERR_NODE_IMPERSONATION_DENIED/);
    } finally {
      other.close();
      await plain.close();
    }
  });
});
