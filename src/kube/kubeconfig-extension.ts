import { existsSync, readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { isMap, isSeq, parseDocument, type Document, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { MeshidError } from '../core/index.ts';
import type { KubeTarget } from './config.ts';

/** What meshid keeps in a kubeconfig context, under extensions[name=meshid]. */
export const MeshidExtensionSchema = z.object({
  /** Where the meshid server is, when it is not reached through the apiserver's service proxy. */
  server: z.string().url().optional(),
  /** PEM of the CA that signs the server's certificate, for https servers. */
  'certificate-authority-data': z.string().optional(),
  /** The ID token from the last login, and when it expires. */
  token: z.string().optional(),
  expiresAt: z.string().optional(),
});
export type MeshidExtension = z.infer<typeof MeshidExtensionSchema>;

export const EXTENSION_NAME = 'meshid';

/** The file kubectl would write a context to: --kubeconfig, else the first $KUBECONFIG file that has it. */
export function kubeconfigFile(target: KubeTarget, context: string | undefined): string {
  if (target.kubeconfig) return target.kubeconfig;
  const list = (process.env['KUBECONFIG'] ?? '').split(delimiter).filter(Boolean);
  if (list.length === 0) return join(homedir(), '.kube', 'config');
  if (context) {
    const holder = list.find((file) => existsSync(file) && readFileSync(file, 'utf8').includes(context));
    if (holder) return holder;
  }
  return list[0] ?? join(homedir(), '.kube', 'config');
}

async function load(file: string): Promise<Document> {
  try {
    return parseDocument(await readFile(file, 'utf8'));
  } catch (error) {
    throw new MeshidError('ERR_KUBECONFIG', `cannot read kubeconfig ${file}`, { cause: error });
  }
}

function contextNode(doc: Document, context: string, file: string): YAMLMap {
  const contexts = doc.get('contexts');
  if (isSeq(contexts)) {
    for (const item of contexts.items) {
      if (isMap(item) && item.get('name') === context) {
        const inner = item.get('context');
        if (isMap(inner)) return inner;
      }
    }
  }
  throw new MeshidError('ERR_KUBECONFIG', `context "${context}" is not in ${file}`);
}

export async function readExtension(file: string, context: string): Promise<MeshidExtension> {
  const doc = await load(file);
  const extensions = contextNode(doc, context, file).get('extensions');
  if (!isSeq(extensions)) return {};
  for (const item of extensions.items) {
    if (isMap(item) && item.get('name') === EXTENSION_NAME) {
      const value = item.get('extension');
      const parsed = MeshidExtensionSchema.safeParse(isMap(value) ? value.toJSON() : {});
      if (!parsed.success) {
        throw new MeshidError('ERR_KUBECONFIG', `the meshid extension of context "${context}" is invalid: ${parsed.error.issues[0]?.path.join('.') ?? ''}`, {
          hint: 'Fix it with `meshid config edit`, or remove it with `meshid logout`.',
        });
      }
      return parsed.data;
    }
  }
  return {};
}

/** Writes (or with undefined, removes) the meshid extension, keeping the rest of the file as it was. */
export async function writeExtension(file: string, context: string, extension: MeshidExtension | undefined): Promise<void> {
  const doc = await load(file);
  const node = contextNode(doc, context, file);
  let extensions = node.get('extensions');
  if (!isSeq(extensions)) {
    if (!extension) return;
    node.set('extensions', doc.createNode([]));
    extensions = node.get('extensions');
  }
  if (!isSeq(extensions)) return;
  extensions.items = extensions.items.filter((item) => !(isMap(item) && item.get('name') === EXTENSION_NAME));
  if (extension) extensions.items.push(doc.createNode({ name: EXTENSION_NAME, extension }));
  if (extensions.items.length === 0) node.delete('extensions');
  // A kubeconfig holds credentials: keep it private, as kubectl does.
  await writeFile(file, doc.toString(), { mode: 0o600 });
  await chmod(file, 0o600);
}
