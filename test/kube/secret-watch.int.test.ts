import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { createLogger } from '../../src/core/index.ts';
import { SecretClient, loadKubeConfig, watchSecrets, type SecretSelector, type SecretWatch } from '../../src/kube/index.ts';
import { CA_SECRET, CA_SECRET_KEY_LABEL, PLUGGED_CA_SECRET } from '../../src/ca/index.ts';
import { KubeSigningKeys, REVOCATIONS_SECRET, SIGNING_KEYS_SELECTOR } from '../../src/tokens/index.ts';
import { SESSION_KEYS_SELECTOR, SESSION_SECRET_NAME } from '../../src/authn/index.ts';
import { testEnv } from '../support/env.ts';

const env = testEnv();
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);
const log = createLogger('test', 'silent');
const NS = 'watch-narrow';

/** A Secret made by hand (kubectl apply): no meshid labels at all. */
const unlabelled = (name: string) => core.createNamespacedSecret({ namespace: NS, body: { metadata: { name }, stringData: { value: 'x' } } });

describe('Secret watches read only their own Secrets', () => {
  const watches = new Map<string, SecretWatch>();
  const keys = new KubeSigningKeys(admin, NS, log);
  // What each watch's owner selects in the server, by the owner's own constant.
  const selectors: Record<string, SecretSelector> = {
    signingKeys: SIGNING_KEYS_SELECTOR,
    session: SESSION_KEYS_SELECTOR,
    revocations: { name: REVOCATIONS_SECRET },
    ca: { name: CA_SECRET },
  };
  const seen = (watch: string): string[] => (watches.get(watch)?.observed() ?? []).map((o) => o.metadata?.name ?? '').sort();

  before(async () => {
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // The CA's key, written as the CA writes it (labelled), before any watch starts: the first list must leave it out.
    await new SecretClient(admin).createIfAbsent({ namespace: NS, name: CA_SECRET, key: CA_SECRET_KEY_LABEL }, () => ({ 'ca-cert.pem': 'c', 'ca-key.pem': 'k' }));
    await keys.rotate();
    await unlabelled(SESSION_SECRET_NAME);
    await unlabelled('unrelated');
    for (const [name, selector] of Object.entries(selectors)) {
      watches.set(name, await watchSecrets(admin, NS, selector, { onUpsert: () => undefined, onDelete: () => undefined }, log));
    }
  });
  after(async () => {
    await Promise.all([...watches.values()].map((w) => w.stop()));
    await core.deleteNamespace({ name: NS }).catch(() => undefined);
  });

  it('lists only the selected Secrets, unlabelled ones by name included', () => {
    assert.deepEqual(seen('signingKeys'), ['user-token-signing-key-1']);
    assert.deepEqual(seen('session'), [SESSION_SECRET_NAME]);
    assert.deepEqual(seen('revocations'), []);
    assert.deepEqual(seen('ca'), [CA_SECRET]);
  });

  it('does not deliver a CA Secret made later to the signing-key watch', async () => {
    await unlabelled(PLUGGED_CA_SECRET);
    await unlabelled(REVOCATIONS_SECRET);
    // Events of one namespace come in write order: once key 2 is here, plugged CA's event would have been too.
    await keys.rotate();
    for (let i = 0; i < 100 && !seen('signingKeys').includes('user-token-signing-key-2'); i++) await sleep(50);
    for (let i = 0; i < 100 && seen('revocations').length === 0; i++) await sleep(50);
    assert.deepEqual(seen('signingKeys'), ['user-token-signing-key-1', 'user-token-signing-key-2']);
    assert.deepEqual(seen('revocations'), [REVOCATIONS_SECRET]);
    assert.deepEqual(seen('ca'), [CA_SECRET]);
    assert.deepEqual(seen('session'), [SESSION_SECRET_NAME]);
  });
});
