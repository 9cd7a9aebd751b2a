import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { DEFAULT_TRUST_DOMAIN, identityFromUsername, spiffeId } from '../../src/contract/index.ts';

describe('workload identity', () => {
  it('turns a service account username into its SPIFFE ID', () => {
    const id = identityFromUsername('system:serviceaccount:default:sleep', DEFAULT_TRUST_DOMAIN);
    assert.deepEqual(id, { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' });
    assert.equal(spiffeId(id), 'spiffe://cluster.local/ns/default/sa/sleep');
    assert.equal(spiffeId(identityFromUsername('system:serviceaccount:istio-system:a.b-c', 'mesh.example')), 'spiffe://mesh.example/ns/istio-system/sa/a.b-c');
  });

  it('gives workload certificates to service accounts only (ERR_UNAUTHENTICATED)', () => {
    for (const username of [
      'alice',
      'system:node:worker-1',
      'system:anonymous',
      'system:serviceaccount:default',
      'system:serviceaccount:default:sleep:extra',
      'system:serviceaccount::sleep',
      'system:serviceaccount:default:',
      'system:serviceaccount:Default:sleep',
      'system:serviceaccount:default:sleep/../admin',
      'system:serviceaccounts:default:sleep',
    ]) {
      assert.throws(
        () => identityFromUsername(username, DEFAULT_TRUST_DOMAIN),
        (e: unknown) => isMeshidError(e, 'ERR_UNAUTHENTICATED') && /only service accounts/.test(e.message),
        username,
      );
    }
  });

  it('refuses names that could smuggle a path or query into the URI (ERR_INVALID_ARGUMENT)', () => {
    const ok = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'sleep' };
    for (const bad of [{ ...ok, trustDomain: 'Cluster.Local' }, { ...ok, trustDomain: 'a/b' }, { ...ok, namespace: 'a/b' }, { ...ok, serviceAccount: 'x?y' }, { ...ok, serviceAccount: '' }]) {
      assert.throws(() => spiffeId(bad), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
    }
  });
});
