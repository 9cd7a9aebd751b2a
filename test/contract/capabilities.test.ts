import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CAPABILITIES, CAPABILITY_KEYS, LOGIN_CAPABILITIES, MESHID_GROUP, MESHID_RESOURCES, capabilityKey, type CapabilityName } from '../../src/contract/index.ts';
import { installManifests } from '../../src/install/index.ts';
import { CAP } from '../../web/src/permissions.ts';

describe('the one list of capabilities', () => {
  it('keys each capability as the login answer always has: <resource>[.<group>]/<verb>', () => {
    assert.equal(capabilityKey(CAPABILITIES.issueUserToken), 'usertokens.meshid.io/create');
    assert.equal(capabilityKey(CAPABILITIES.listPods), 'pods/list');
    assert.equal(CAPABILITY_KEYS.rotateCa, 'certificateauthorities.meshid.io/update');
  });

  it('asks at login exactly the cluster-wide checks it asked before, in the same order', () => {
    assert.deepEqual(
      LOGIN_CAPABILITIES.map((c) => c.key),
      [
        'usertokens.meshid.io/create',
        'signingkeys.meshid.io/list',
        'signingkeys.meshid.io/create',
        'revocations.meshid.io/list',
        'revocations.meshid.io/create',
        'registries.meshid.io/list',
        'registries.meshid.io/create',
        'registries.meshid.io/delete',
        'certificateauthorities.meshid.io/get',
        'certificateauthorities.meshid.io/update',
        'recoveries.meshid.io/create',
        'namespaces/list',
        'pods/list',
      ],
    );
    assert.ok(!LOGIN_CAPABILITIES.some((c) => c.resource === 'events'), 'a namespaced capability is not asked cluster-wide');
  });

  it("gives install's meshid-admin and meshid-viewer roles every meshid.io resource an action checks", () => {
    const roles = installManifests({ namespace: 'meshid-system', image: 'meshid:test', anonymousAuth: false, replicas: 1 }).filter(
      (o) => o.kind === 'ClusterRole' && ['meshid-admin', 'meshid-viewer'].includes(o.metadata?.name ?? ''),
    ) as unknown as { rules: { apiGroups: string[]; resources: string[] }[] }[];
    assert.equal(roles.length, 2);
    const used = new Set(Object.values(CAPABILITIES).filter((c) => c.group === MESHID_GROUP).map((c) => c.resource));
    assert.deepEqual(new Set(MESHID_RESOURCES), used);
    for (const role of roles) assert.deepEqual(new Set(role.rules[0]?.resources), used);
  });

  it("is the dashboard's permission map too", () => {
    for (const name of Object.keys(CAPABILITIES) as CapabilityName[]) assert.equal(CAP[name], capabilityKey(CAPABILITIES[name]));
    // @ts-expect-error a misspelt capability name does not compile
    assert.equal(CAPABILITY_KEYS.rotateCA, undefined);
  });
});
