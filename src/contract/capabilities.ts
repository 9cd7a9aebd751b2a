/**
 * meshid's permissions, one list for every place that names one: install's RBAC roles, the
 * questions the server asks SubjectAccessReview at login (the `capabilities` answer), the
 * checks before each action, and the dashboard's buttons. An action names its capability by
 * `CapabilityName`, so a misspelt one is a type error rather than a 500 at run time.
 *
 * This module imports nothing: the dashboard (web/, built by Vite) imports it by path.
 */

/** meshid's own API group: RBAC on its resources is how Kubernetes authorizes meshid's actions. */
export const MESHID_GROUP = 'meshid.io';

export interface Capability {
  verb: string;
  /** `meshid.io`, or '' for the core group. */
  group: string;
  resource: string;
  /**
   * Asked in one namespace (meshid's own), not cluster-wide: the login answer leaves it out,
   * since it asks cluster-wide only; the action checks it as the user when it runs.
   */
  namespaced?: boolean;
}

export const CAPABILITIES = {
  issueUserToken: { verb: 'create', group: MESHID_GROUP, resource: 'usertokens' },
  listSigningKeys: { verb: 'list', group: MESHID_GROUP, resource: 'signingkeys' },
  rotateSigningKey: { verb: 'create', group: MESHID_GROUP, resource: 'signingkeys' },
  listRevocations: { verb: 'list', group: MESHID_GROUP, resource: 'revocations' },
  revokeToken: { verb: 'create', group: MESHID_GROUP, resource: 'revocations' },
  listRegistries: { verb: 'list', group: MESHID_GROUP, resource: 'registries' },
  addRegistry: { verb: 'create', group: MESHID_GROUP, resource: 'registries' },
  removeRegistry: { verb: 'delete', group: MESHID_GROUP, resource: 'registries' },
  readCa: { verb: 'get', group: MESHID_GROUP, resource: 'certificateauthorities' },
  rotateCa: { verb: 'update', group: MESHID_GROUP, resource: 'certificateauthorities' },
  planRecovery: { verb: 'create', group: MESHID_GROUP, resource: 'recoveries' },
  listNamespaces: { verb: 'list', group: '', resource: 'namespaces' },
  listPods: { verb: 'list', group: '', resource: 'pods' },
  listEvents: { verb: 'list', group: '', resource: 'events', namespaced: true },
} as const satisfies Record<string, Capability>;

export type CapabilityName = keyof typeof CAPABILITIES;

type ResourceOf<C> = C extends { resource: infer R extends string; group: infer G extends string } ? (G extends '' ? R : `${R}.${G}`) : never;
/** A resource as kubectl names it (`usertokens.meshid.io`, `pods`), for each one the list checks. */
export type CapabilityResource = ResourceOf<(typeof CAPABILITIES)[CapabilityName]>;

/** The key a capability has on the wire (login answer, `me`): `<resource>[.<group>]/<verb>`. */
export function capabilityKey(capability: Capability): string {
  return `${capability.resource}${capability.group ? `.${capability.group}` : ''}/${capability.verb}`;
}

const NAMES = Object.keys(CAPABILITIES) as CapabilityName[];

/** Each capability's wire key by name, for the dashboard's buttons. */
export const CAPABILITY_KEYS = Object.fromEntries(NAMES.map((name) => [name, capabilityKey(CAPABILITIES[name])])) as Record<CapabilityName, string>;

/** What the server asks SubjectAccessReview at login: every cluster-wide capability. */
export const LOGIN_CAPABILITIES: readonly (Capability & { key: string })[] = NAMES.map((name) => CAPABILITIES[name] as Capability)
  .filter((c) => !c.namespaced)
  .map((c) => ({ key: capabilityKey(c), verb: c.verb, group: c.group, resource: c.resource }));

/** The resources of group meshid.io, in the list's order: what install's roles grant. */
export const MESHID_RESOURCES: readonly string[] = [...new Set(NAMES.map((name) => CAPABILITIES[name] as Capability).filter((c) => c.group === MESHID_GROUP).map((c) => c.resource))];
