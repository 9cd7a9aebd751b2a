import type { ComponentType } from 'react';
import { OverviewPage } from './OverviewPage.tsx';
import { RecoveryPage } from './RecoveryPage.tsx';
import { RegistriesPage } from './RegistriesPage.tsx';
import { TokensPage } from './TokensPage.tsx';
import { WorkloadIdentityPage } from './WorkloadIdentityPage.tsx';

export interface Page {
  path: string;
  title: string;
  lead: string;
  Component: ComponentType;
}

// `/tokens` itself belongs to Kuma's token API on the server, hence `/user-tokens`.
export const PAGES: readonly Page[] = [
  { path: '/', title: 'Overview', lead: 'Who you are to Kubernetes, and what RBAC lets you do in meshid.', Component: OverviewPage },
  { path: '/user-tokens', title: 'Tokens', lead: 'User tokens for people and automation: issue, revoke, and the keys that sign them.', Component: TokensPage },
  { path: '/workload-identity', title: 'Workload identity', lead: 'The CA, its roots, and the SPIFFE identities of your workloads.', Component: WorkloadIdentityPage },
  { path: '/recovery', title: 'Recovery', lead: 'What a full recovery after a compromise would rotate and revoke.', Component: RecoveryPage },
  { path: '/registries', title: 'Registries', lead: 'Image-registry credentials that meshid keeps and re-keys.', Component: RegistriesPage },
];

export function pageFor(path: string): Page | undefined {
  const normalized = path.length > 1 ? path.replace(/\/+$/, '') : path;
  return PAGES.find((page) => page.path === normalized);
}
