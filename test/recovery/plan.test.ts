import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1DaemonSet, V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { isMeshidError } from '../../src/core/index.ts';
import { readableKeys } from '../../src/authn/index.ts';
import {
  STEPS,
  buildPlan,
  meshScope,
  parseJournal,
  parseNamespaceList,
  parseSteps,
  podsToDelete,
  renderPlan,
  renderReport,
  restartWaves,
  resumable,
  rolloutState,
  type Inventory,
  type PlanOptions,
  type RecoveryReport,
} from '../../src/recovery/index.ts';

function inventory(over: Partial<Inventory> = {}): Inventory {
  return {
    meshidNamespace: 'meshid-system',
    registryNamespace: 'meshid-registry-access',
    rootConfigMap: 'istio-ca-root-cert',
    namespaces: ['meshid-system', 'foo'],
    absentNamespaces: ['istio-system'],
    tokenSecrets: [
      { namespace: 'meshid-system', name: 'meshid-token-x', serviceAccount: 'meshid' },
      { namespace: 'foo', name: 'legacy' },
    ],
    workloads: [
      { kind: 'Deployment', namespace: 'foo', name: 'web' },
      { kind: 'Deployment', namespace: 'foo', name: 'frozen', paused: true },
      { kind: 'DaemonSet', namespace: 'meshid-system', name: 'meshid-agent' },
    ],
    pods: [
      { namespace: 'foo', name: 'bare', uid: 'u1' },
      { namespace: 'foo', name: 'job-abc', uid: 'u2', controller: { kind: 'Job', name: 'job', uid: 'j1' } },
    ],
    session: { present: true, keys: 2 },
    signingKeys: [1, 2],
    adminToken: true,
    ca: { mode: 'self-signed', rootFingerprint: 'ab'.repeat(32), bundle: ['ab'.repeat(32)], rotationInProgress: false, pendingRoot: false },
    registry: {
      entries: [{ name: 'corp', servers: [{ server: 'r.example.com', username: 'robot' }], updatedAt: '2030-01-01T00:00:00.000Z' }],
      reconcile: {
        registryNamespace: 'meshid-registry-access',
        entries: ['corp'],
        namespaces: ['meshid-system', 'foo'],
        absentNamespaces: [],
        copies: [
          { namespace: 'foo', name: 'corp', action: 'created' },
          { namespace: 'foo', name: 'gone', action: 'deleted', detail: 'its registry entry is gone' },
          { namespace: 'meshid-system', name: 'corp', action: 'unchanged' },
        ],
        serviceAccounts: [{ namespace: 'foo', name: 'default', added: ['corp'], removed: ['gone'] }],
      },
    },
    journal: undefined,
    ...over,
  };
}

const options = (over: Partial<PlanOptions> = {}): PlanOptions => ({
  steps: [...STEPS],
  ca: { propagationMs: 5000, graceMs: 0, restartWorkloads: false },
  reissueAdminToken: true,
  ...over,
});

const step = (plan: ReturnType<typeof buildPlan>, name: string) => {
  const found = plan.steps.find((s) => s.step === name);
  assert.ok(found, `step ${name} in the plan`);
  return found;
};

describe('recovery steps and mesh namespaces', () => {
  it('orders `all` safely: Kubernetes tokens first, then meshid keys, then the CA, the registry last', () => {
    assert.deepEqual(parseSteps('all'), ['service-account-tokens', 'jwt-key', 'signing-key', 'ca', 'registry']);
    assert.deepEqual(parseSteps('ca'), ['ca']);
    assert.throws(() => parseSteps('everything'), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /service-account-tokens/.test(e.hint ?? ''));
  });

  it('defaults to meshid, registry, istio-system and cert-manager plus the mesh label; each flag replaces its own default', () => {
    const base = { meshidNamespace: 'meshid-system', registryNamespace: 'meshid-registry-access' };
    assert.deepEqual(meshScope(base), { names: ['meshid-system', 'meshid-registry-access', 'istio-system', 'cert-manager'], label: 'meshid.io/mesh=enabled' });
    assert.deepEqual(meshScope({ ...base, namespaces: ['a', 'b', 'a'] }), { names: ['a', 'b'], label: undefined }, 'a list alone is exactly that list');
    assert.deepEqual(meshScope({ ...base, label: 'team=x' }).label, 'team=x');
    assert.deepEqual(meshScope({ ...base, namespaces: ['a'], label: 'team=x' }), { names: ['a'], label: 'team=x' });
    assert.equal(meshScope({ ...base, label: '' }).label, undefined, '"" turns the label off');
    assert.deepEqual(meshScope({ ...base, meshidNamespace: 'other' }).names[0], 'other', "meshid's own namespace follows -n");
    assert.throws(() => meshScope({ ...base, namespaces: ['Bad_Name'] }), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
    assert.deepEqual(parseNamespaceList(' a, b ,,'), ['a', 'b']);
    assert.throws(() => parseNamespaceList(' , '), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
  });
});

describe('the recovery plan (built from an inventory, without Kubernetes)', () => {
  it('lists every token Secret, restart and pod deletion of the service-account-tokens step, per namespace', () => {
    const plan = buildPlan(inventory(), options());
    assert.deepEqual(plan.meshNamespaces, ['meshid-system', 'foo']);
    assert.deepEqual(plan.absentNamespaces, ['istio-system']);
    const tokens = step(plan, 'service-account-tokens');
    assert.deepEqual(
      tokens.actions.map((a) => `${a.action} ${a.kind} ${a.namespace ?? ''}/${a.name}`),
      [
        'delete Secret meshid-system/meshid-token-x',
        'delete Secret foo/legacy',
        'restart Deployment foo/web',
        'skip Deployment foo/frozen',
        'restart DaemonSet meshid-system/meshid-agent',
        'delete Pod foo/bare',
        'delete Pod foo/job-abc',
      ],
    );
    assert.match(tokens.actions.find((a) => a.name === 'bare')?.detail ?? '', /will not come back/);
    assert.match(tokens.actions.find((a) => a.name === 'job-abc')?.detail ?? '', /Job job recreates it/);
    assert.match(tokens.summary, /delete 2 token Secrets in 2 namespaces, restart 2 workloads, delete 2 pods/);
  });

  it('plans a new signing key above every serial, the admin token re-issued, and every other key removed', () => {
    const keys = step(buildPlan(inventory({ signingKeys: [1, 7] }), options()), 'signing-key');
    assert.deepEqual(keys.actions.map((a) => `${a.action} ${a.name}`), ['create user-token-signing-key-8', 'reissue admin-user-token', 'remove user-token-signing-key-1', 'remove user-token-signing-key-7']);
    const noReissue = step(buildPlan(inventory(), options({ reissueAdminToken: false })), 'signing-key');
    assert.ok(!noReissue.actions.some((a) => a.action === 'reissue'));
    assert.match(noReissue.summary, /NOT re-issued/);
  });

  it('replaces the session key, or says there is none', () => {
    assert.deepEqual(step(buildPlan(inventory(), options()), 'jwt-key').actions.map((a) => `${a.action} ${a.namespace ?? ''}/${a.name}`), ['replace meshid-system/meshid-authentication']);
    const none = step(buildPlan(inventory({ session: { present: false, keys: 0 } }), options()), 'jwt-key');
    assert.equal(none.actions.length, 0);
    assert.match(none.summary, /nothing to replace/);
  });

  it('rotates a self-signed root with the given times, blocks a plugged-in CA without new material, and plugs it with', () => {
    const rotate = step(buildPlan(inventory(), options()), 'ca');
    assert.deepEqual(rotate.actions.map((a) => a.action), ['rotate', 'publish']);
    assert.match(rotate.summary, /signs after 5s, the old roots are dropped 0s later/);
    assert.equal(rotate.blocked, undefined);
    const restarting = step(buildPlan(inventory(), options({ ca: { propagationMs: 5000, graceMs: 0, restartWorkloads: true } })), 'ca');
    assert.ok(restarting.actions.some((a) => a.action === 'restart' && a.name === 'web'), '--restart-workloads adds the restarts');
    const plugged = inventory({ ca: { mode: 'plugged-in', rootFingerprint: 'cd'.repeat(32), bundle: [], rotationInProgress: false, pendingRoot: false } });
    const blocked = step(buildPlan(plugged, options()), 'ca');
    assert.match(blocked.blocked ?? '', /--cert-chain, --key and --root/);
    const plug = step(buildPlan(plugged, options({ ca: { propagationMs: 0, graceMs: 0, restartWorkloads: false, pluggedRoot: 'ef'.repeat(32) } })), 'ca');
    assert.equal(plug.blocked, undefined);
    assert.deepEqual(plug.actions.map((a) => `${a.action} ${a.name}`), ['plug cacerts', 'publish istio-ca-root-cert']);
    const absent = step(buildPlan(inventory({ ca: { mode: 'absent', bundle: [], rotationInProgress: false, pendingRoot: false } }), options()), 'ca');
    assert.equal(absent.actions.length, 0);
  });

  it('says a pending rotation is dropped, and follows the one an interrupted recovery announced', () => {
    const pending = inventory({ ca: { mode: 'self-signed', rootFingerprint: 'ab'.repeat(32), bundle: ['ab'.repeat(32), 'cd'.repeat(32)], rotationInProgress: true, pendingRoot: true } });
    assert.match(step(buildPlan(pending, options()), 'ca').summary, /the rotation under way is dropped first/);
    const journal = { id: 'r2', steps: [...STEPS], startedAt: 't', progress: { ca: { startedAt: 't', newRoot: 'cd'.repeat(32) } } };
    const resumed = step(buildPlan({ ...pending, journal }, options()), 'ca');
    assert.match(resumed.summary, /follow the rotation to root sha256:cdcdcdcdcdcdcdcd… that the interrupted run announced/);
    assert.deepEqual(resumed.actions.map((a) => a.action), ['publish'], 'no second rotation');
  });

  it('lists registry entries by server and user, and what reconcile would change', () => {
    const registry = step(buildPlan(inventory(), options()), 'registry');
    assert.deepEqual(
      registry.actions.map((a) => `${a.action} ${a.kind} ${a.namespace ?? ''}/${a.name}`),
      ['list RegistryEntry meshid-registry-access/corp', 'create Secret foo/corp', 'delete Secret foo/gone', 'update ServiceAccount foo/default'],
    );
    assert.match(registry.actions[0]?.detail ?? '', /r\.example\.com as robot/);
    assert.match(registry.actions[3]?.detail ?? '', /\+imagePullSecrets corp -imagePullSecrets gone/);
    assert.match(registry.summary, /1 registry entry to re-key by hand; reconcile changes 2 pull secrets and 1 service account/);
  });

  it('plans only the asked-for step', () => {
    const plan = buildPlan(inventory(), options({ steps: ['jwt-key'] }));
    assert.deepEqual(plan.steps.map((s) => s.step), ['jwt-key']);
  });

  it('resumes an unfinished recovery of the same steps: done steps are marked, the journaled serial is kept', () => {
    const journal = {
      id: 'r1',
      steps: [...STEPS],
      startedAt: '2030-01-01T00:00:00.000Z',
      progress: { 'service-account-tokens': { startedAt: 'a', completedAt: '2030-01-01T00:00:01.000Z' }, 'jwt-key': { startedAt: 'b', completedAt: 'c' }, 'signing-key': { startedAt: 'd', newSerial: 3 } },
    };
    const plan = buildPlan(inventory({ journal, signingKeys: [1, 2, 3] }), options());
    assert.deepEqual(plan.resumes, { id: 'r1', startedAt: '2030-01-01T00:00:00.000Z', done: ['service-account-tokens', 'jwt-key'] });
    assert.equal(step(plan, 'service-account-tokens').done, true);
    assert.equal(step(plan, 'service-account-tokens').actions.length, 0);
    assert.deepEqual(step(plan, 'signing-key').actions.map((a) => `${a.action} ${a.name}`), ['reissue admin-user-token', 'remove user-token-signing-key-1', 'remove user-token-signing-key-2'], 'key 3 exists: no new key');
    assert.match(renderPlan(plan, { dryRun: true }), /Resumes the interrupted recovery r1 .*done already: service-account-tokens, jwt-key/);
    assert.equal(buildPlan(inventory({ journal }), options({ steps: ['ca'] })).resumes, undefined, 'other steps: a new recovery');
    assert.equal(buildPlan(inventory({ journal: { ...journal, finishedAt: 'x' } }), options()).resumes, undefined, 'a finished one is not resumed');
  });

  it('renders numbered steps, one line per object, the namespaces, and ends with the verification', () => {
    const text = renderPlan(buildPlan(inventory(), options()), { dryRun: true });
    assert.match(text, /dry run: nothing will change/);
    assert.match(text, /Mesh namespaces: meshid-system, foo \(absent, skipped: istio-system\)/);
    assert.match(text, /^1\. service-account-tokens: /m);
    assert.match(text, /^5\. registry: /m);
    assert.match(text, /delete +Secret foo\/legacy/);
    assert.match(text, /^6\. verify: /m);
  });
});

describe('journal, workloads and report helpers', () => {
  it('reads a journal, refuses a garbled one, and resumes only an unfinished one of the same steps', () => {
    assert.equal(parseJournal('{not json'), undefined);
    assert.equal(parseJournal(JSON.stringify({ id: 'x', startedAt: 't', steps: ['nonsense'] })), undefined);
    const state = parseJournal(JSON.stringify({ id: 'x', startedAt: 't', steps: ['ca', 'registry'], progress: {} }));
    assert.ok(state);
    assert.equal(resumable(state, ['ca', 'registry']), true);
    assert.equal(resumable(state, ['registry', 'ca']), false);
    assert.equal(resumable({ ...state, finishedAt: 'y' }, ['ca', 'registry']), false);
  });

  it('judges a rollout as `kubectl rollout status` does', () => {
    const deployment = (replicas: number, status: NonNullable<V1Deployment['status']>): V1Deployment => ({ metadata: { generation: 2 }, spec: { replicas, selector: {}, template: {} }, status });
    assert.equal(rolloutState('Deployment', deployment(1, { observedGeneration: 1, updatedReplicas: 1, replicas: 1, availableReplicas: 1 }), 2).done, false, 'restart not seen yet');
    assert.equal(rolloutState('Deployment', deployment(0, { observedGeneration: 2 }), 2).done, true, 'zero replicas: done at once');
    const stuck = rolloutState('Deployment', deployment(2, { observedGeneration: 2, updatedReplicas: 2, replicas: 3, availableReplicas: 1 }), 2);
    assert.equal(stuck.done, false);
    assert.equal(stuck.detail, '1/2 updated pods available');
    assert.equal(rolloutState('Deployment', deployment(2, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }), 2).done, true);
    const ds = (status: NonNullable<V1DaemonSet['status']>): V1DaemonSet => ({ metadata: { generation: 1 }, status });
    assert.equal(rolloutState('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 0, currentNumberScheduled: 0, numberMisscheduled: 0, numberReady: 0 }), 1).done, true);
    assert.equal(rolloutState('DaemonSet', ds({ observedGeneration: 1, desiredNumberScheduled: 2, updatedNumberScheduled: 1, numberAvailable: 2, currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 2 }), 1).done, false);
    const sts = (status: NonNullable<V1StatefulSet['status']>): V1StatefulSet => ({ metadata: { generation: 3 }, spec: { replicas: 1, selector: {}, serviceName: 's', template: {} }, status });
    assert.equal(rolloutState('StatefulSet', sts({ observedGeneration: 3, replicas: 1, readyReplicas: 1, currentRevision: 'a', updateRevision: 'b' }), 3).done, false, 'not all pods on the new revision');
    assert.equal(rolloutState('StatefulSet', sts({ observedGeneration: 3, replicas: 1, readyReplicas: 1, currentRevision: 'b', updateRevision: 'b' }), 3).done, true);
  });

  it('deletes only the pods no restarted workload covers, and never mirror or terminating pods', () => {
    const pod = (name: string, owner?: { kind: string; uid: string }, extra: Partial<NonNullable<V1Pod['metadata']>> = {}): V1Pod => ({
      metadata: { name, namespace: 'foo', uid: `uid-${name}`, ...(owner ? { ownerReferences: [{ apiVersion: 'v1', kind: owner.kind, name: `${owner.kind.toLowerCase()}-x`, uid: owner.uid, controller: true }] } : {}), ...extra },
    });
    const owners = new Map([
      ['rs-of-deploy', 'Deployment'],
      ['rs-alone', ''],
    ]);
    const picked = podsToDelete(
      [
        pod('bare'),
        pod('ds', { kind: 'DaemonSet', uid: 'd' }),
        pod('sts', { kind: 'StatefulSet', uid: 's' }),
        pod('deploy', { kind: 'ReplicaSet', uid: 'rs-of-deploy' }),
        pod('lonely-rs', { kind: 'ReplicaSet', uid: 'rs-alone' }),
        pod('job', { kind: 'Job', uid: 'j' }),
        pod('static', undefined, { annotations: { 'kubernetes.io/config.mirror': 'x' } }),
        pod('going', undefined, { deletionTimestamp: new Date() }),
      ],
      owners,
    );
    assert.deepEqual(picked.map((p) => `${p.name}:${p.controller?.kind ?? '-'}`), ['bare:-', 'lonely-rs:ReplicaSet', 'job:Job']);
  });

  it("restarts meshid's own namespace first, then the mesh workloads, and skips an empty wave", () => {
    const w = (namespace: string, name: string, kind: 'Deployment' | 'DaemonSet' = 'Deployment') => ({ kind, namespace, name });
    const waves = restartWaves(
      'meshid-system',
      [w('foo', 'sleep'), w('meshid-system', 'meshid'), w('meshid-system', 'meshid-agent', 'DaemonSet'), w('bar', 'httpbin')],
      [{ namespace: 'bar', name: 'bare', uid: 'u1' }],
    );
    assert.deepEqual(
      waves.map((v) => `${v.name}: ${[...v.workloads.map((x) => `${x.namespace}/${x.name}`), ...v.pods.map((p) => `pod ${p.namespace}/${p.name}`)].join(', ')}`),
      ["meshid's own pods: meshid-system/meshid, meshid-system/meshid-agent", 'the mesh workloads: foo/sleep, bar/httpbin, pod bar/bare'],
    );
    // Recovery of another namespace's mesh (meshid not among the mesh namespaces): one wave.
    assert.deepEqual(restartWaves('meshid-system', [w('foo', 'sleep')], []).map((v) => v.name), ['the mesh workloads']);
  });

  it("reads session keys as meshid-authentication holds them, and nothing from a garbled Secret", () => {
    const keys = readableKeys(JSON.stringify([{ kid: 'k1', key: Buffer.alloc(32, 1).toString('base64url') }, { kid: 3 }]));
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.kid, 'k1');
    assert.equal(Buffer.from(keys[0]?.secret ?? []).length, 32);
    assert.deepEqual(readableKeys('{'), []);
  });

  it('renders a report with per-step durations, each check and the next steps', () => {
    const report: RecoveryReport = {
      id: 'r1',
      resumed: true,
      meshidNamespace: 'meshid-system',
      meshNamespaces: ['foo'],
      startedAt: 'a',
      finishedAt: 'b',
      durationMs: 12_345,
      steps: [
        { step: 'jwt-key', status: 'done', durationMs: 120, objects: [{ action: 'replace', kind: 'Secret', name: 'meshid-authentication' }], notes: ['log in again'], warnings: [] },
        { step: 'ca', status: 'failed', durationMs: 30_000, objects: [], notes: [], warnings: ['slow'], error: { code: 'ERR_RECOVERY_FAILED', message: 'no server', hint: 'start one' } },
      ],
      verification: { durationMs: 800, checks: [{ step: 'jwt-key', check: 'old session refused', status: 'passed', detail: '401', durationMs: 5 }, { step: 'ca', check: 'x', status: 'failed', detail: 'no', durationMs: 1 }] },
      ok: false,
    };
    const text = renderReport(report);
    assert.match(text, /Recovery r1 \(resumed\) in meshid-system: NOT complete in 12\.3 s/);
    assert.match(text, /jwt-key +done +0\.1 s +replace 1/);
    assert.match(text, /ca +failed +30\.0 s/);
    assert.match(text, /error: no server \[ERR_RECOVERY_FAILED\]/);
    assert.match(text, /warning: slow/);
    assert.match(text, /✔ jwt-key: old session refused: 401/);
    assert.match(text, /✖ ca: x: no/);
    assert.match(text, /Next:\n {2}jwt-key: log in again/);
  });
});
