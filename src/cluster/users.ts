import { randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';

/**
 * The playground's sample users, one per way kubectl authenticates, each with RBAC that
 * makes the difference between them visible.
 */
export const SAMPLE_USERS = ['admin', 'alice', 'bob', 'carol'] as const;
export type SampleUser = (typeof SAMPLE_USERS)[number];

export const DEV_NAMESPACE = 'dev';

export interface StaticTokenUser {
  name: string;
  uid: string;
  groups: string[];
  token: string;
}

export function staticTokenUsers(): { bob: StaticTokenUser; carol: StaticTokenUser } {
  const token = (): string => randomBytes(24).toString('base64url');
  return {
    bob: { name: 'bob', uid: 'uid-bob', groups: ['ops'], token: token() },
    // carol's token never sits in her kubeconfig: her exec plugin hands it out.
    carol: { name: 'carol', uid: 'uid-carol', groups: ['qa'], token: token() },
  };
}

/** kube-apiserver's --token-auth-file format: token,user,uid,"group1,group2". */
export function tokenAuthFile(users: StaticTokenUser[]): string {
  return users.map((u) => `${u.token},${u.name},${u.uid},"${u.groups.join(',')}"`).join('\n') + '\n';
}

export function sampleRbac(): KubernetesObject[] {
  const rbac = 'rbac.authorization.k8s.io/v1';
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEV_NAMESPACE } },
    {
      apiVersion: rbac,
      kind: 'Role',
      metadata: { name: 'pod-reader', namespace: DEV_NAMESPACE },
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }],
    } as KubernetesObject,
    {
      apiVersion: rbac,
      kind: 'RoleBinding',
      metadata: { name: 'alice-pod-reader', namespace: DEV_NAMESPACE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }],
    } as KubernetesObject,
    {
      apiVersion: rbac,
      kind: 'ClusterRoleBinding',
      metadata: { name: 'ops-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'ops' }],
    } as KubernetesObject,
    {
      apiVersion: rbac,
      kind: 'RoleBinding',
      metadata: { name: 'carol-edit', namespace: DEV_NAMESPACE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'carol' }],
    } as KubernetesObject,
  ];
}
