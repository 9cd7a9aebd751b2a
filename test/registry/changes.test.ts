import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MeshidError, isMeshidError } from '../../src/core/index.ts';
import type { AuditTrail, SecurityEvent } from '../../src/kube/index.ts';
import { addRegistryEntry, dockerConfigFor, removeRegistryEntry, type DockerConfig, type RegistryChangeDeps } from '../../src/registry/index.ts';

/** The store in memory (a map of entries), the audit trail in a list, RBAC as a switch. */
function memory(allowed = true) {
  const entries = new Map<string, DockerConfig>();
  const events: SecurityEvent[] = [];
  const trail: AuditTrail = { record: (event) => void events.push(event) };
  let asked = 0;
  const deps: RegistryChangeDeps = {
    store: {
      add: async (name, config, options = {}) => {
        const created = !entries.has(name);
        if (!created && !options.replace) throw new MeshidError('ERR_REGISTRY_INVALID', `entry ${name} exists`);
        entries.set(name, config);
        return { created };
      },
      remove: async (name) => {
        if (!entries.delete(name)) throw new MeshidError('ERR_NOT_FOUND', `no entry ${name}`);
      },
    },
    audit: trail,
    authorize: async () => {
      asked++;
      if (!allowed) throw new MeshidError('ERR_FORBIDDEN', 'no');
    },
  };
  return { deps, entries, events, asked: () => asked };
}

const ecr = dockerConfigFor('123456789012.dkr.ecr.eu-west-1.amazonaws.com', 'AWS', 's3cret');

describe('registry changes (the CLI, the dashboard)', () => {
  it('adds, re-keys and removes an entry, auditing servers and never a secret', async () => {
    const m = memory();
    assert.deepEqual(await addRegistryEntry(m.deps, { user: 'alice' }, 'ecr', ecr), { name: 'ecr', created: true });
    assert.deepEqual(await addRegistryEntry(m.deps, { user: 'alice', via: 'meshid CLI' }, 'ecr', ecr, { replace: true }), { name: 'ecr', created: false });
    assert.equal(await removeRegistryEntry(m.deps, { user: 'alice' }, 'ecr'), 'ecr');
    assert.equal(m.entries.size, 0);
    assert.deepEqual(m.events.map((e) => [e.reason, e.user, e.message]), [
      ['RegistryChanged', 'alice', 'added registry entry ecr for 123456789012.dkr.ecr.eu-west-1.amazonaws.com'],
      ['RegistryChanged', 'alice', 're-keyed registry entry ecr for 123456789012.dkr.ecr.eu-west-1.amazonaws.com (meshid CLI)'],
      ['RegistryChanged', 'alice', 'removed registry entry ecr'],
    ]);
    assert.ok(!JSON.stringify(m.events).includes('s3cret'));
  });

  it('refuses a bad name or bad credentials before RBAC is asked or anything is written', async () => {
    const m = memory();
    const invalid = (error: unknown) => isMeshidError(error) && error.code === 'ERR_REGISTRY_INVALID';
    await assert.rejects(addRegistryEntry(m.deps, { user: 'alice' }, 'Not_A_Name', ecr), invalid);
    await assert.rejects(addRegistryEntry(m.deps, { user: 'alice' }, undefined, ecr), invalid);
    await assert.rejects(addRegistryEntry(m.deps, { user: 'alice' }, 'ecr', { auths: { 'registry.example': {} } }), invalid);
    await assert.rejects(removeRegistryEntry(m.deps, { user: 'alice' }, '../x'), invalid);
    assert.deepEqual([m.asked(), m.entries.size, m.events], [0, 0, []]);
  });

  it('changes and audits nothing when RBAC says no', async () => {
    const m = memory(false);
    await assert.rejects(addRegistryEntry(m.deps, { user: 'bob' }, 'ecr', ecr), (error: unknown) => isMeshidError(error) && error.code === 'ERR_FORBIDDEN');
    assert.deepEqual([m.entries.size, m.events], [0, []]);
  });
});
