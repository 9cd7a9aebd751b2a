import { REGISTRY_NAMESPACE, RegistryStore, reconcileRegistries } from '../registry/index.ts';
import type { StepContext } from './context.ts';

/**
 * Step `registry`: meshid cannot re-key credentials that a registry issues, so it lists
 * them, says how to replace them, and reconciles the pull secrets in the mesh namespaces
 * with the entries as they stand (new credentials out, removed ones gone).
 */
export async function reconcileRegistryStep(ctx: StepContext): Promise<void> {
  const ns = ctx.options.registryNamespace;
  const entries = await new RegistryStore(ctx.kc, ns).list();
  ctx.progress.update(`registry: reconciling ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`);
  const result = await reconcileRegistries(ctx.kc, { registryNamespace: ns, namespaces: ctx.inventory.namespaces, onProgress: (t) => ctx.progress.update(t) });
  for (const c of result.copies) {
    if (c.action === 'unchanged') continue;
    if (c.action === 'conflict') {
      ctx.report.warnings.push(`Secret ${c.namespace}/${c.name}: ${c.detail ?? 'conflict'}`);
      continue;
    }
    ctx.report.objects.push({ action: c.action === 'created' ? 'create' : c.action === 'deleted' ? 'delete' : 'replace', kind: 'Secret', namespace: c.namespace, name: c.name, detail: 'image pull secret copy' });
  }
  for (const sa of result.serviceAccounts) {
    ctx.report.objects.push({
      action: 'update',
      kind: 'ServiceAccount',
      namespace: sa.namespace,
      name: sa.name,
      detail: [...sa.added.map((n) => `+${n}`), ...sa.removed.map((n) => `-${n}`)].join(' '),
    });
  }
  const flag = ns === REGISTRY_NAMESPACE ? '' : ` --registry-namespace ${ns}`;
  if (entries.length === 0) {
    ctx.report.notes.push(`No registry credentials are stored in ${ns}.`);
    return;
  }
  ctx.report.notes.push(
    `Stored registry credentials (revoke each at its registry, e.g. in the AWS console for ECR, and create new ones): ${entries
      .map((e) => `${e.name} = ${e.servers.map((s) => `${s.server} as ${s.username}`).join(', ') || e.error || '?'} (stored ${e.updatedAt ?? '?'})`)
      .join('; ')}.`,
    `Then, for each: \`meshid registry add${flag} --name NAME --server SERVER --username USER --password-stdin --replace\` (or \`meshid registry remove${flag} NAME\` if it is no longer needed), and \`meshid registry reconcile${flag}\`.`,
  );
}
