import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { IMPERSONATED_EXTRA_KEYS, impersonableExtra } from '../../src/kube/index.ts';
import { installManifests } from '../../src/install/index.ts';

describe('impersonated user extras', () => {
  it('keeps the extras of a pod-bound service-account token and of an EKS token, whatever their case', () => {
    const pod = {
      'authentication.kubernetes.io/pod-name': ['web-1'],
      'authentication.kubernetes.io/pod-uid': ['3f1c'],
      'authentication.kubernetes.io/node-name': ['node-a'],
      'authentication.kubernetes.io/node-uid': ['77aa'],
      'authentication.kubernetes.io/credential-id': ['JTI=abc'],
    };
    assert.deepEqual(impersonableExtra(pod), pod);
    const eks = { accessKeyId: ['AKIA'], arn: ['arn:aws:iam::1:user/a'], canonicalArn: ['arn:aws:iam::1:user/a'], sessionName: [''], principalId: ['AIDA'] };
    assert.deepEqual(impersonableExtra(eks), eks);
  });

  it('leaves out the EKS key nobody may impersonate, and has no extras left when that was all', () => {
    assert.deepEqual(impersonableExtra({ principalId: ['AIDA'], 'sigs.k8s.io/aws-iam-authenticator/principalId': ['AIDA'] }), { principalId: ['AIDA'] });
    assert.equal(impersonableExtra({ 'sigs.k8s.io/aws-iam-authenticator/principalId': ['AIDA'] }), undefined);
    assert.equal(impersonableExtra({}), undefined);
    assert.equal(impersonableExtra(undefined), undefined);
  });

  it('refuses a key the ClusterRole does not grant (ERR_EXTRA_NOT_GRANTED), naming it and what to grant', () => {
    assert.throws(
      () => impersonableExtra({ 'authentication.kubernetes.io/pod-name': ['p'], 'example.com/Team': ['a'] }),
      (e: unknown) => isMeshidError(e, 'ERR_EXTRA_NOT_GRANTED') && /"example.com\/Team"/.test(e.message) && /userextras\/example\.com\/team/.test(e.hint ?? '') && /ClusterRole/.test(e.hint ?? ''),
    );
  });

  it('is exactly what the installed ClusterRole grants, one resource per key', () => {
    const role = installManifests({ namespace: 'x', anonymousAuth: false, image: 'i', replicas: 0 }).find((o) => o.kind === 'ClusterRole' && o.metadata?.name === 'meshid-server-x') as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    const granted = role.rules.filter((r) => r.apiGroups.includes('authentication.k8s.io') && r.verbs.includes('impersonate')).flatMap((r) => r.resources.filter((x) => x.startsWith('userextras/')));
    assert.deepEqual(granted, IMPERSONATED_EXTRA_KEYS.map((k) => `userextras/${k}`));
    assert.ok(!granted.includes('userextras/*'));
    for (const key of IMPERSONATED_EXTRA_KEYS) assert.equal(key, key.toLowerCase());
  });
});
