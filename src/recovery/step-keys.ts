import { KubeSessionKeys, SESSION_SECRET_NAME, SESSION_TTL_MS, SessionTokens, StaticSessionKeys, readStoredSessionKeys, type SessionKey } from '../authn/index.ts';
import { isNotFound } from '../kube/index.ts';
import { ADMIN_TOKEN_SECRET, KubeSigningKeys, SIGNING_KEY_PREFIX, adminTokenKid, parsePrivateKey, reissueAdminToken, signUserToken } from '../tokens/index.ts';
import type { StepContext } from './context.ts';
import { until } from './context.ts';

/** The identity of the tokens recovery makes only to check the servers' answers. */
export const PROBE_USER = 'meshid-recovery-probe';

export async function readSessionKeys(ctx: Pick<StepContext, 'kc' | 'options'>): Promise<SessionKey[] | undefined> {
  return readStoredSessionKeys(ctx.kc, ctx.options.meshidNamespace);
}

/** A session token signed with a given key, exactly as a server would sign one. */
export async function probeSession(key: SessionKey): Promise<string> {
  return (await new SessionTokens(new StaticSessionKeys([key])).issue({ name: PROBE_USER, groups: [] }, {})).token;
}

/** A short-lived user token signed with a given key. */
export function probeUserToken(serial: number, pem: string): string {
  return signUserToken({ kid: String(serial), privateKey: parsePrivateKey(pem) }, { name: PROBE_USER, groups: [], validForMs: 5 * 60_000 });
}

/**
 * Step `jwt-key`: every key in Secret meshid-authentication is replaced by one new key, so
 * every session is refused at once. The servers watch the Secret; since it still exists they
 * never create one of their own, and nobody holds the new key but the cluster.
 */
export async function replaceSessionKey(ctx: StepContext): Promise<void> {
  const before = await readSessionKeys(ctx);
  if (!before) {
    ctx.report.status = 'skipped';
    ctx.report.notes.push(`There is no Secret ${SESSION_SECRET_NAME} in ${ctx.options.meshidNamespace} (anonymous mode, or no server has started): no session to end.`);
    return;
  }
  ctx.progress.update(`jwt-key: replacing ${before.length} session key${before.length === 1 ? '' : 's'}`);
  await new KubeSessionKeys(ctx.kc, { namespace: ctx.options.meshidNamespace, sessionTtlMs: SESSION_TTL_MS, log: ctx.log }).invalidate();
  const after = (await readSessionKeys(ctx)) ?? [];
  ctx.report.objects.push({
    action: 'replace',
    kind: 'Secret',
    namespace: ctx.options.meshidNamespace,
    name: SESSION_SECRET_NAME,
    detail: `new key ${after.map((k) => k.kid).join(', ')}; ${before.length} old key${before.length === 1 ? '' : 's'} dropped`,
  });
  ctx.report.notes.push('Every session is refused now: people log in again (`meshid login`; the CLI does it by itself on a 401, the dashboard sends them to the login page).');
}

/**
 * Step `signing-key`: (1) a new user-token signing key, (2) the admin token re-issued with
 * it, (3) every other key removed, so every token they signed is refused, (4) a note of
 * what to re-issue. The new serial is journaled, so a resumed run keeps it.
 */
export async function replaceSigningKeys(ctx: StepContext): Promise<void> {
  const ns = ctx.options.meshidNamespace;
  const keys = new KubeSigningKeys(ctx.kc, ns, ctx.log);
  const stored = (await keys.listStored()).map((k) => k.serial);
  let serial = ctx.journal.record('signing-key')?.newSerial;
  if (serial === undefined || !stored.includes(serial)) {
    ctx.progress.update('signing-key: creating a new signing key');
    serial = await keys.rotate();
    await ctx.journal.update('signing-key', { newSerial: serial });
    ctx.report.objects.push({ action: 'create', kind: 'Secret', namespace: ns, name: `${SIGNING_KEY_PREFIX}${serial}`, detail: 'the new signing key' });
  }
  const pem = await keys.exportKey(serial);

  const admin = (await adminTokenKid(ctx.kc, ns)) !== undefined;
  if (admin && ctx.options.reissueAdminToken) {
    ctx.progress.update(`signing-key: re-issuing ${ADMIN_TOKEN_SECRET}`);
    if (await reissueAdminToken(ctx.kc, ns, { kid: String(serial), privateKey: parsePrivateKey(pem) }, ctx.clock)) {
      ctx.report.objects.push({ action: 'reissue', kind: 'Secret', namespace: ns, name: ADMIN_TOKEN_SECRET, detail: `admin token signed by key ${serial}` });
    }
  } else if (admin) {
    ctx.report.warnings.push(`Secret ${ns}/${ADMIN_TOKEN_SECRET} was not re-issued: its token is refused once the old keys are gone; delete the Secret or re-issue it`);
  }

  // The servers must sign with the new key before the old ones go, or they briefly have none.
  if (ctx.probe) {
    const probe = ctx.probe;
    const token = probeUserToken(serial, pem);
    const seen = await until(10_000, async () => (await probe.whoami(token).catch(() => 0)) === 200, 200);
    if (!seen) ctx.report.warnings.push(`the server at ${probe.describe} did not accept a token of key ${serial} within 10 s; removing the old keys anyway`);
  } else {
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }

  const old = (await keys.listStored()).map((k) => k.serial).filter((s) => s !== serial);
  for (const s of old) {
    ctx.progress.update(`signing-key: removing key ${s}`);
    await keys.remove(s).catch((error: unknown) => {
      if (!isNotFound(error) && (error as { code?: unknown }).code !== 'ERR_NOT_FOUND') throw error;
    });
    ctx.report.objects.push({ action: 'remove', kind: 'Secret', namespace: ns, name: `${SIGNING_KEY_PREFIX}${s}`, detail: 'tokens it signed are refused' });
  }
  ctx.report.notes.push(
    `Key ${serial} signs now${old.length > 0 ? `; every user token signed by key${old.length === 1 ? '' : 's'} ${old.join(', ')} is refused` : ''}. ` +
      `Re-issue the tokens people and automation still need: \`meshid generate user-token --name NAME --group GROUP --valid-for 24h\`` +
      (admin && ctx.options.reissueAdminToken ? `; the admin token is in Secret ${ns}/${ADMIN_TOKEN_SECRET}.` : '.'),
  );
}
