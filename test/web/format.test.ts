import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describePermission, missingPermission, mayDo } from '../../web/src/permissions.ts';
import type { Me } from '../../web/src/queries.ts';
import { formatTime, relativeTime } from '../../web/src/time.ts';

const alice: Me = {
  name: 'alice',
  groups: ['dev'],
  uid: null,
  anonymous: false,
  expiresAt: null,
  capabilities: [
    { key: 'certificateauthorities.meshid.io/update', verb: 'update', group: 'meshid.io', resource: 'certificateauthorities', allowed: false },
    { key: 'certificateauthorities.meshid.io/get', verb: 'get', group: 'meshid.io', resource: 'certificateauthorities', allowed: true },
  ],
};

describe('dashboard permissions', () => {
  it('words a permission as kubectl auth can-i reads it', () => {
    assert.equal(describePermission({ verb: 'update', group: 'meshid.io', resource: 'certificateauthorities' }), 'update certificateauthorities.meshid.io');
    assert.equal(describePermission({ verb: 'list', group: '', resource: 'pods', namespace: 'dev' }), 'list pods in namespace dev');
  });

  it('names the missing permission of a refused capability, and nothing for allowed or unchecked ones', () => {
    assert.deepEqual(missingPermission(alice, 'certificateauthorities.meshid.io/update'), { verb: 'update', group: 'meshid.io', resource: 'certificateauthorities' });
    assert.equal(missingPermission(alice, 'certificateauthorities.meshid.io/get'), undefined);
    assert.equal(missingPermission(alice, 'events/list'), undefined);
    assert.equal(mayDo(alice, 'certificateauthorities.meshid.io/update'), false);
    // Not checked at login: the button stays enabled and the server has the last word.
    assert.equal(mayDo(alice, 'events/list'), true);
  });
});

describe('dashboard time formats', () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0);

  it('shows absolute times in UTC to the minute', () => {
    assert.equal(formatTime('2030-01-01T12:34:56.789Z'), '2030-01-01 12:34 UTC');
    assert.equal(formatTime(null), '—');
    assert.equal(formatTime('not a date'), 'not a date');
  });

  it('shows distances in the largest whole unit, past and future', () => {
    assert.equal(relativeTime(new Date(now + 3 * 3_600_000).toISOString(), now), 'in 3 h');
    assert.equal(relativeTime(new Date(now - 5 * 60_000).toISOString(), now), '5 min ago');
    assert.equal(relativeTime(new Date(now + 2 * 86_400_000).toISOString(), now), 'in 2 d');
    assert.equal(relativeTime(new Date(now - 20_000).toISOString(), now), '20 s ago');
    assert.equal(relativeTime(undefined, now), '');
  });
});
