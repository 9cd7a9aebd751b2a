/**
 * The questions meshid asks SubjectAccessReview at login, so the dashboard and CLI can show
 * what a user may do before they try (rather than fail after the click). Keys are
 * `<resource>[.<group>]/<verb>`; all are cluster-wide checks.
 */
export interface CapabilityCheck {
  key: string;
  group: string;
  resource: string;
  verb: string;
}

const MESHID_GROUP = 'meshid.io';

const meshid = (resource: string, verb: string): CapabilityCheck => ({ key: `${resource}.${MESHID_GROUP}/${verb}`, group: MESHID_GROUP, resource, verb });
const core = (resource: string, verb: string): CapabilityCheck => ({ key: `${resource}/${verb}`, group: '', resource, verb });

export const CAPABILITY_CHECKS: readonly CapabilityCheck[] = [
  meshid('usertokens', 'create'),
  meshid('signingkeys', 'list'),
  meshid('signingkeys', 'create'),
  meshid('revocations', 'list'),
  meshid('revocations', 'create'),
  meshid('registries', 'list'),
  meshid('registries', 'create'),
  meshid('registries', 'delete'),
  meshid('certificateauthorities', 'get'),
  meshid('certificateauthorities', 'update'),
  meshid('recoveries', 'create'),
  core('namespaces', 'list'),
  core('pods', 'list'),
];
