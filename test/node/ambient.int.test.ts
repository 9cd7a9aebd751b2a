// Istio ambient's node proxy against meshid's CA on the playground's real node: a Go client on
// istio.io/api (peers/istio/cmd/ambient-ca-client) asks CreateCertificate with
// ImpersonatedIdentity, as ztunnel does, with a token bound to a pod that runs on the node as
// istio-system/ztunnel. meshid answers from its server pods behind the Service, and finds which
// pods run on the node by asking the real kube-apiserver.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, AuthenticationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { ensureAmbientCaClient } from '../../src/cluster/istio-peer.ts';
import { KubeNodePods, ROOT_CONFIGMAP, ROOT_CONFIGMAP_KEY } from '../../src/ca/index.ts';
import { IMAGE_UID } from '../../src/image/index.ts';
import { loadKubeConfig } from '../../src/kube/index.ts';
import { testNodeEnv } from '../support/env.ts';

const run = promisify(execFile);
const env = testNodeEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const apps = admin.makeApiClient(AppsV1Api);

const PROXY_NS = 'istio-system';
const PROXY_SA = 'ztunnel';
/** A service account in foo with no pod anywhere: a name that exists but runs on no node. */
const IDLE_SA = 'idle';
const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

interface Answer {
  code: string;
  message?: string;
  uris?: string[];
}

/** The first Running, undeleted pod of a Deployment's `app` label in `namespace`. */
async function runningPod(namespace: string, app: string, timeoutMs = 120_000): Promise<V1Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` });
    const pod = pods.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running');
    if (pod) return pod;
    if (Date.now() > deadline) assert.fail(`no Running pod of ${namespace}/${app}: ${JSON.stringify(pods.items.map((p) => p.status))}`);
    await sleep(500);
  }
}

/** A token for audience istio-ca; bound to `pod` when given, as kubelet projects a pod's token. */
async function istioToken(namespace: string, serviceAccount: string, pod?: V1Pod): Promise<string> {
  const boundObjectRef = pod ? { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' } : undefined;
  const answer = await core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: ['istio-ca'], expirationSeconds: 600, ...(boundObjectRef ? { boundObjectRef } : {}) } },
  });
  return answer.status?.token ?? assert.fail('TokenRequest answered no token');
}

describe('Istio ambient: a node proxy asks for the certificates of pods on its node', () => {
  let client = '';
  let dir = '';
  /** The trust bundle as published now: an earlier test may have rotated the root since boot. */
  let roots = '';
  let proxyPod: V1Pod;
  let sleepPod: V1Pod;

  /** One CreateCertificate from the Go client with `token`, asking for `identity`. */
  async function ask(token: string, identity: string): Promise<Answer> {
    const tokenFile = join(dir, `token-${Math.random().toString(36).slice(2)}`);
    await writeFile(tokenFile, token, { mode: 0o600 });
    const { stdout } = await run(client, ['-addr', env.ca.address, '-root', roots, '-server-name', 'istiod.istio-system.svc', '-token-file', tokenFile, '-impersonate', identity], { timeout: 30_000 });
    return JSON.parse(stdout) as Answer;
  }

  before(async () => {
    client = await ensureAmbientCaClient();
    dir = await mkdtemp(join(tmpdir(), 'meshid-ambient-'));
    roots = join(dir, 'roots.pem');
    const bundle = await core.readNamespacedConfigMap({ namespace: 'meshid-system', name: ROOT_CONFIGMAP });
    await writeFile(roots, bundle.data?.[ROOT_CONFIGMAP_KEY] ?? assert.fail('no published trust bundle'));
    // The node proxy runs the image meshid itself runs from: the node has it, nothing is pulled.
    const meshid = await apps.readNamespacedDeployment({ name: 'meshid', namespace: 'meshid-system' });
    const image = meshid.spec?.template.spec?.containers[0]?.image ?? assert.fail('the meshid Deployment names no image');
    await core.createNamespace({ body: { metadata: { name: PROXY_NS } } }).catch((error: unknown) => {
      // Another test may have made it; anything else is a failure.
      if ((error as { code?: number }).code !== 409) throw error;
    });
    await core.createNamespacedServiceAccount({ namespace: PROXY_NS, body: { metadata: { name: PROXY_SA } } });
    await core.createNamespacedServiceAccount({ namespace: 'foo', body: { metadata: { name: IDLE_SA } } });
    await apps.createNamespacedDeployment({
      namespace: PROXY_NS,
      body: {
        metadata: { name: PROXY_SA, labels: { app: PROXY_SA } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: PROXY_SA } },
          template: {
            metadata: { labels: { app: PROXY_SA } },
            spec: {
              serviceAccountName: PROXY_SA,
              automountServiceAccountToken: false,
              securityContext: { runAsUser: IMAGE_UID, runAsGroup: IMAGE_UID, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
              containers: [
                {
                  name: PROXY_SA,
                  image,
                  imagePullPolicy: 'Never',
                  // Stands in for ztunnel: only its pod's place on the node and its token matter.
                  command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
                  securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                  resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } },
                },
              ],
            },
          },
        },
      },
    });
    proxyPod = await runningPod(PROXY_NS, PROXY_SA);
    sleepPod = await runningPod('foo', 'sleep');
    assert.equal(proxyPod.spec?.nodeName, env.node.name);
    assert.equal(sleepPod.spec?.nodeName, env.node.name);
  });

  after(async () => {
    await core.deleteNamespace({ name: PROXY_NS }).catch(() => undefined);
    await core.deleteNamespacedServiceAccount({ name: IDLE_SA, namespace: 'foo' }).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('issues the node proxy a certificate for a workload whose pod runs on its node', async () => {
    const token = await istioToken(PROXY_NS, PROXY_SA, proxyPod);
    for (const [ns, sa] of [['foo', 'httpbin'], ['bar', 'sleep']] as const) {
      const answer = await ask(token, spiffe(ns, sa));
      assert.equal(answer.code, 'OK', answer.message);
      assert.deepEqual(answer.uris, [spiffe(ns, sa)]);
    }
  });

  it('reads the node from the pod-bound token on this Kubernetes, and finds pods by node and service account', async () => {
    // What the CA relies on: the apiserver binds the pod's node into the token (1.32+).
    const review = await admin.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: await istioToken(PROXY_NS, PROXY_SA, proxyPod), audiences: ['istio-ca'] } } });
    const extra = review.status?.user?.extra ?? {};
    assert.deepEqual(extra['authentication.kubernetes.io/node-name'], [env.node.name]);
    assert.deepEqual(extra['authentication.kubernetes.io/pod-name'], [proxyPod.metadata?.name]);
    assert.deepEqual(extra['authentication.kubernetes.io/pod-uid'], [proxyPod.metadata?.uid]);
    // The lookups themselves, against the real apiserver (older clusters take nodeOf).
    const pods = new KubeNodePods(admin);
    assert.equal(await pods.nodeOf(PROXY_NS, proxyPod.metadata?.name ?? '', proxyPod.metadata?.uid), env.node.name);
    assert.equal(await pods.nodeOf(PROXY_NS, proxyPod.metadata?.name ?? '', 'another-uid'), undefined);
    assert.equal(await pods.runsOn(env.node.name, { namespace: 'foo', serviceAccount: 'httpbin' }), true);
    assert.equal(await pods.runsOn(env.node.name, { namespace: 'foo', serviceAccount: IDLE_SA }), false);
    assert.equal(await pods.runsOn('another-node', { namespace: 'foo', serviceAccount: 'httpbin' }), false);
  });

  it('refuses the node proxy an identity with no pod on its node (PERMISSION_DENIED), and records it', async () => {
    const token = await istioToken(PROXY_NS, PROXY_SA, proxyPod);
    const answer = await ask(token, spiffe('foo', IDLE_SA));
    assert.equal(answer.code, 'PermissionDenied');
    assert.match(answer.message ?? '', /no pod of foo\/idle runs on node .*\(ERR_NODE_IMPERSONATION_DENIED\)$/);
    // The audit trail: a Warning event in meshid's namespace, written by the server pod that refused.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const events = await core.listNamespacedEvent({ namespace: 'meshid-system', fieldSelector: 'reason=NodeImpersonationRefused' });
      const event = events.items.find((e) => e.message?.includes(spiffe('foo', IDLE_SA)));
      if (event) {
        assert.equal(event.type, 'Warning');
        assert.equal(event.metadata.annotations?.['meshid.io/user'], `system:serviceaccount:${PROXY_NS}:${PROXY_SA}`);
        break;
      }
      if (Date.now() > deadline) assert.fail('no NodeImpersonationRefused event was recorded');
      await sleep(500);
    }
  });

  it('refuses any other caller: sleep\'s own pod-bound token asking for httpbin (PERMISSION_DENIED)', async () => {
    const answer = await ask(await istioToken('foo', 'sleep', sleepPod), spiffe('foo', 'httpbin'));
    assert.equal(answer.code, 'PermissionDenied');
    assert.match(answer.message ?? '', /foo\/sleep may not ask for another workload's certificate.*\(ERR_NODE_IMPERSONATION_DENIED\)$/);
  });

  it('refuses the node proxy\'s account with a token bound to no pod: it proves no node (UNAUTHENTICATED)', async () => {
    const answer = await ask(await istioToken(PROXY_NS, PROXY_SA), spiffe('foo', 'httpbin'));
    assert.equal(answer.code, 'Unauthenticated');
    assert.match(answer.message ?? '', /not bound to a pod.*\(ERR_UNAUTHENTICATED\)$/);
  });
});
