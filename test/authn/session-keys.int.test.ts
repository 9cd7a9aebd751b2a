import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it, type TestContext } from 'node:test';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { decodeProtectedHeader } from 'jose';
import { createLogger, isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { KEY_LABEL, loadKubeConfig } from '../../src/kube/index.ts';
import { KubeSessionKeys, SESSION_SECRET_NAME, SESSION_TTL_MS, SessionTokens, type Capabilities, type Identity } from '../../src/authn/index.ts';
import { testEnv } from '../support/env.ts';

const env = testEnv();
const log = createLogger('test', 'silent');
const admin = loadKubeConfig({ kubeconfig: env.kubeconfigs.admin });
const core = admin.makeApiClient(CoreV1Api);

const POLL_MS = 100;
const HOUR = 60 * 60 * 1000;
const alice: Identity = { name: 'alice', groups: ['dev', 'system:authenticated'] };
const caps: Capabilities = { 'pods/list': true };

interface Replica {
  name: string;
  keys: KubeSessionKeys;
  tokens: SessionTokens;
}

interface StoredKey {
  kid: string;
  key: string;
  retireAt?: string;
}

/**
 * A fresh namespace and `count` replicas on it, each with its own kubeconfig and informer,
 * started together. The test's after() stops every replica, then deletes the namespace.
 */
async function replicas(t: TestContext, count = 3): Promise<{ namespace: string; replicas: Replica[] }> {
  const namespace = `sk-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const started: KubeSessionKeys[] = [];
  t.after(async () => {
    // Stop the watches first, so no replica tries to recreate the Secret in a dying namespace.
    await Promise.all(started.map((keys) => keys.stop()));
    await core.deleteNamespace({ name: namespace });
  });
  const made = Array.from({ length: count }, (_, i) => {
    const keys = new KubeSessionKeys(loadKubeConfig({ kubeconfig: env.kubeconfigs.admin }), { namespace, sessionTtlMs: SESSION_TTL_MS, log });
    return { name: String.fromCharCode(65 + i), keys, tokens: new SessionTokens(keys) };
  });
  await Promise.all(
    made.map(async (r) => {
      await r.keys.start();
      started.push(r.keys);
    }),
  );
  return { namespace, replicas: made };
}

/** Joins a replica to an existing namespace (a late starter or a restarted pod). */
async function joinReplica(t: TestContext, namespace: string, name: string): Promise<Replica> {
  const keys = new KubeSessionKeys(loadKubeConfig({ kubeconfig: env.kubeconfigs.admin }), { namespace, sessionTtlMs: SESSION_TTL_MS, log });
  await keys.start();
  t.after(() => keys.stop());
  return { name, keys, tokens: new SessionTokens(keys) };
}

/** Retries `check` every 100 ms until it passes; after `timeoutMs` rethrows its last failure. */
async function eventually(what: string, timeoutMs: number, check: () => Promise<void> | void): Promise<number> {
  const start = Date.now();
  const maxAttempts = Math.ceil(timeoutMs / POLL_MS) + 1;
  let last: unknown;
  for (let attempt = 0; attempt < maxAttempts && Date.now() - start <= timeoutMs; attempt++) {
    try {
      await check();
      return Date.now() - start;
    } catch (error) {
      last = error;
    }
    await sleep(POLL_MS);
  }
  const reason = last instanceof Error ? last.message : String(last);
  throw new assert.AssertionError({ message: `${what}: not true within ${timeoutMs} ms; last failure: ${reason}` });
}

function kidOf(token: string): unknown {
  return decodeProtectedHeader(token).kid;
}

async function assertRefused(r: Replica, token: string, code: ErrorCode = 'ERR_TOKEN_INVALID'): Promise<void> {
  await assert.rejects(r.tokens.verify(token), (e: unknown) => isMeshidError(e, code), `replica ${r.name} must refuse the token with ${code}`);
}

async function assertVerifies(r: Replica, token: string): Promise<void> {
  const session = await r.tokens.verify(token);
  assert.equal(session.user.name, alice.name, `replica ${r.name} verifies the token`);
  assert.deepEqual(session.capabilities, caps);
}

function assertUnavailable(r: Replica): void {
  assert.throws(
    () => r.keys.current(),
    (e: unknown) => isMeshidError(e, 'ERR_SESSION_KEY_UNAVAILABLE'),
    `replica ${r.name} must have no signing key`,
  );
}

/** Every replica signs with `kid` (and all agree). */
function assertAllCurrent(rs: Replica[], kid: string): void {
  for (const r of rs) assert.equal(r.keys.current().kid, kid, `replica ${r.name} signs with ${kid}`);
}

async function sessionSecrets(namespace: string): Promise<V1Secret[]> {
  return (await core.listNamespacedSecret({ namespace, labelSelector: `${KEY_LABEL}=session` })).items;
}

async function readSecret(namespace: string): Promise<V1Secret> {
  return core.readNamespacedSecret({ namespace, name: SESSION_SECRET_NAME });
}

function rawKeys(secret: V1Secret): string {
  return Buffer.from(secret.data?.['keys.json'] ?? '', 'base64').toString('utf8');
}

function storedKeys(secret: V1Secret): StoredKey[] {
  const raw = rawKeys(secret);
  const keys = JSON.parse(raw) as unknown;
  assert.ok(Array.isArray(keys), `keys.json is an array: ${raw}`);
  return keys as StoredKey[];
}

/** The only session Secret in the namespace, checked by label, and its keys. */
async function onlySecret(namespace: string): Promise<{ secret: V1Secret; keys: StoredKey[] }> {
  const items = await sessionSecrets(namespace);
  assert.equal(items.length, 1, `exactly one session Secret, got ${items.map((s) => s.metadata?.name).join(', ')}`);
  const secret = items[0];
  assert.ok(secret);
  assert.equal(secret.metadata?.name, SESSION_SECRET_NAME);
  return { secret, keys: storedKeys(secret) };
}

describe('session keys shared by replicas through Secret meshid-authentication (real kube-apiserver)', () => {
  it('three replicas starting together on an empty namespace create exactly one Secret and agree on its key', async (t) => {
    const { namespace, replicas: rs } = await replicas(t);
    const { secret, keys } = await onlySecret(namespace);
    assert.equal(keys.length, 1, 'one key, not one per replica');
    const stored = keys[0];
    assert.ok(stored);
    assert.equal(stored.retireAt, undefined);
    assert.match(stored.key, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/part-of'], 'meshid');
    assertAllCurrent(rs, stored.kid);

    // One key means a token from any replica verifies on every other.
    const [a, b, c] = rs;
    assert.ok(a && b && c);
    const issued = await a.tokens.issue(alice, caps);
    assert.equal(kidOf(issued.token), stored.kid);
    for (const r of rs) await assertVerifies(r, issued.token);
  });

  it('rotate() on one replica reaches the others within 5 s; old tokens keep verifying and the old key retires in about 10 h', async (t) => {
    const { namespace, replicas: rs } = await replicas(t);
    const [a, b, c] = rs;
    assert.ok(a && b && c);
    const oldKid = a.keys.current().kid;
    const before = await b.tokens.issue(alice, caps);
    assert.equal(kidOf(before.token), oldKid);

    const rotatedFrom = Date.now();
    await a.keys.rotate();
    const rotatedTo = Date.now();
    const newKid = a.keys.current().kid;
    assert.notEqual(newKid, oldKid, 'the rotating replica signs with the new key at once');

    await eventually('B and C sign with the rotated key', 5000, () => assertAllCurrent(rs, newKid));

    for (const r of rs) await assertVerifies(r, before.token);
    const after = await b.tokens.issue(alice, caps);
    assert.equal(kidOf(after.token), newKid, 'a new token names the new key');
    for (const r of rs) await assertVerifies(r, after.token);
    for (const r of rs) assert.equal(r.keys.find(oldKid)?.kid, oldKid, `replica ${r.name} still verifies with the old key`);

    const { keys } = await onlySecret(namespace);
    assert.equal(keys.length, 2, 'the new key and the old one');
    const [fresh, old] = keys;
    assert.ok(fresh && old);
    assert.equal(fresh.kid, newKid, 'the signing key comes first');
    assert.equal(fresh.retireAt, undefined);
    assert.equal(old.kid, oldKid);
    assert.ok(old.retireAt, 'the old key has a retirement time');
    const retireAt = Date.parse(old.retireAt);
    assert.ok(
      retireAt >= rotatedFrom + 10 * HOUR - 1000 && retireAt <= rotatedTo + 10 * HOUR + 1000,
      `old key retires 10 h after the rotation: ${old.retireAt}, rotation ${new Date(rotatedFrom).toISOString()}`,
    );
  });

  it('invalidate() on one replica makes every replica refuse older tokens within 5 s, retired keys included; new tokens work', async (t) => {
    const { namespace, replicas: rs } = await replicas(t);
    const [a, b, c] = rs;
    assert.ok(a && b && c);
    // A token under a key that was rotated out (still verifying), and one under the current key.
    const underRetired = await a.tokens.issue(alice, caps);
    await a.keys.rotate();
    const rotatedKid = a.keys.current().kid;
    await eventually('replicas pick up the rotation', 5000, () => assertAllCurrent(rs, rotatedKid));
    const underCurrent = await c.tokens.issue(alice, caps);
    for (const r of rs) {
      await assertVerifies(r, underRetired.token);
      await assertVerifies(r, underCurrent.token);
    }

    await b.keys.invalidate();
    const newKid = b.keys.current().kid;
    assert.notEqual(newKid, rotatedKid);
    for (const old of [underRetired, underCurrent]) await assertRefused(b, old.token);

    await eventually('every replica refuses the old tokens', 5000, async () => {
      for (const r of rs) {
        await assertRefused(r, underRetired.token);
        await assertRefused(r, underCurrent.token);
      }
    });
    assertAllCurrent(rs, newKid);

    const { keys } = await onlySecret(namespace);
    assert.deepEqual(
      keys.map((k) => k.kid),
      [newKid],
      'invalidate leaves exactly one key, no retired ones',
    );
    for (const issuer of rs) {
      const fresh = await issuer.tokens.issue(alice, caps);
      assert.equal(kidOf(fresh.token), newKid);
      for (const r of rs) await assertVerifies(r, fresh.token);
    }
  });

  it('a deleted Secret comes back within 10 s with a new key; old tokens are refused everywhere and one Secret exists', async (t) => {
    const { namespace, replicas: rs } = await replicas(t);
    const [a] = rs;
    assert.ok(a);
    const { secret: original } = await onlySecret(namespace);
    const oldKid = a.keys.current().kid;
    const old = await a.tokens.issue(alice, caps);

    await core.deleteNamespacedSecret({ namespace, name: SESSION_SECRET_NAME });

    let newKid = '';
    await eventually('the Secret is recreated with a new key that every replica uses', 10_000, async () => {
      const { secret, keys } = await onlySecret(namespace);
      assert.notEqual(secret.metadata?.uid, original.metadata?.uid, 'a new Secret, not the old one');
      assert.equal(keys.length, 1);
      const kid = keys[0]?.kid;
      assert.ok(kid);
      assert.notEqual(kid, oldKid, 'a different key');
      assertAllCurrent(rs, kid);
      newKid = kid;
    });

    for (const r of rs) await assertRefused(r, old.token);
    for (const r of rs) assert.equal(r.keys.find(oldKid), undefined, `replica ${r.name} forgot the old key`);
    const fresh = await a.tokens.issue(alice, caps);
    assert.equal(kidOf(fresh.token), newKid);
    for (const r of rs) await assertVerifies(r, fresh.token);

    // Give late watch events a moment: still one Secret, still the same key everywhere.
    await sleep(1000);
    const { keys } = await onlySecret(namespace);
    assert.deepEqual(
      keys.map((k) => k.kid),
      [newKid],
    );
    assertAllCurrent(rs, newKid);
  });

  it('a hand-edited unreadable Secret makes every replica fail closed within 5 s; rotate() repairs it', async (t) => {
    const { namespace, replicas: rs } = await replicas(t);
    const [a, b, c] = rs;
    assert.ok(a && b && c);
    const old = await a.tokens.issue(alice, caps);
    for (const r of rs) await assertVerifies(r, old.token);

    const secret = await readSecret(namespace);
    await core.replaceNamespacedSecret({
      namespace,
      name: SESSION_SECRET_NAME,
      body: { ...secret, data: { 'keys.json': Buffer.from('not json').toString('base64') } },
    });

    await eventually('every replica refuses every token and has no signing key', 5000, async () => {
      for (const r of rs) {
        await assertRefused(r, old.token);
        assertUnavailable(r);
        await assert.rejects(r.tokens.issue(alice, caps), (e: unknown) => isMeshidError(e, 'ERR_SESSION_KEY_UNAVAILABLE'));
      }
    });
    // A replica that starts now, on the broken Secret, fails closed too (and does not overwrite it).
    const late = await joinReplica(t, namespace, 'D');
    await assertRefused(late, old.token);
    assertUnavailable(late);
    assert.equal(rawKeys(await readSecret(namespace)), 'not json', 'starting a replica does not silently replace the Secret');

    await b.keys.rotate();
    const repaired = b.keys.current().kid;
    const all = [...rs, late];
    await eventually('every replica signs with the repaired key', 5000, () => assertAllCurrent(all, repaired));
    const { keys } = await onlySecret(namespace);
    assert.equal(keys.length, 1, 'the unreadable content is replaced wholesale, nothing retired is kept');
    assert.equal(keys[0]?.kid, repaired);
    assert.equal(keys[0]?.retireAt, undefined);
    for (const issuer of all) {
      const fresh = await issuer.tokens.issue(alice, caps);
      assert.equal(kidOf(fresh.token), repaired);
      for (const r of all) await assertVerifies(r, fresh.token);
    }
    for (const r of all) await assertRefused(r, old.token);
  });
});
