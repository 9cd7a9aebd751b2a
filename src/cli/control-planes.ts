import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { MeshidError } from '../core/index.ts';

/**
 * kumactl-style control planes: a meshid server reached at an address with a user token,
 * for people and automation that have no kubeconfig. They live in a file of their own,
 * not in a kubeconfig, because nothing about them is Kubernetes.
 */

const httpAddress = z.string().refine(isHttpAddress, { message: 'must be an http:// or https:// URL' });

export const ControlPlaneSchema = z
  .object({
    name: z.string().min(1),
    address: httpAddress,
    authType: z.literal('tokens'),
    authConf: z.object({ token: z.string().min(1) }),
    /**
     * PEM text rather than file paths, like kubeconfig's *-data fields: the file stays
     * self-contained, so a moved or deleted certificate file cannot break it later.
     */
    caCertData: z.string().optional(),
    clientCertData: z.string().optional(),
    clientKeyData: z.string().optional(),
    skipVerify: z.boolean().optional(),
  })
  .superRefine((cp, ctx) => {
    if (cp.caCertData !== undefined && cp.skipVerify) ctx.addIssue({ code: 'custom', path: ['skipVerify'], message: 'cannot be set together with caCertData' });
    if ((cp.clientCertData === undefined) !== (cp.clientKeyData === undefined)) {
      ctx.addIssue({ code: 'custom', path: [cp.clientCertData === undefined ? 'clientCertData' : 'clientKeyData'], message: 'clientCertData and clientKeyData go together' });
    }
  });
export type ControlPlane = z.infer<typeof ControlPlaneSchema>;

export const ControlPlanesConfigSchema = z
  .object({
    currentControlPlane: z.string().min(1).optional(),
    controlPlanes: z.array(ControlPlaneSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.controlPlanes.forEach((cp, i) => {
      if (seen.has(cp.name)) ctx.addIssue({ code: 'custom', path: ['controlPlanes', i, 'name'], message: `"${cp.name}" appears twice` });
      seen.add(cp.name);
    });
    if (config.currentControlPlane !== undefined && !seen.has(config.currentControlPlane)) {
      ctx.addIssue({ code: 'custom', path: ['currentControlPlane'], message: `no control plane is named "${config.currentControlPlane}"` });
    }
  });
export type ControlPlanesConfig = z.infer<typeof ControlPlanesConfigSchema>;

const FILE_HINT = 'Fix the file, or delete it and add the control planes again with `meshid config control-planes add`.';
export const ADD_USAGE = 'meshid config control-planes add --name NAME --address https://HOST:5682 --auth-type tokens --auth-conf token=TOKEN';

export function isHttpAddress(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** `$MESHID_CONFIG`, else `~/.meshid/config.yaml`. */
export function controlPlanesFile(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env['MESHID_CONFIG'];
  return configured ? configured : join(homedir(), '.meshid', 'config.yaml');
}

/** `controlPlanes[0].address`: the way a person would point at the field in the file. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`)).join('') || '(top level)';
}

/** Reads the file; a missing one is an empty config. A bad one fails naming the field, never echoing a value (it may be a token). */
export async function readControlPlanes(file: string = controlPlanesFile()): Promise<ControlPlanesConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { controlPlanes: [] };
    throw new MeshidError('ERR_INVALID_ARGUMENT', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${file} is not valid YAML`, { cause: error, hint: FILE_HINT });
  }
  const parsed = ControlPlanesConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${file} is invalid: ${fieldPath(issue?.path ?? [])}: ${issue?.message ?? 'invalid'}`, { hint: FILE_HINT });
  }
  return parsed.data;
}

/**
 * Writes the whole file at once (temporary file, then rename), so a crash never leaves half
 * a token behind. It holds bearer tokens: owner-only, like ~/.kube/config.
 */
export async function writeControlPlanes(config: ControlPlanesConfig, file: string = controlPlanesFile()): Promise<void> {
  const checked = ControlPlanesConfigSchema.parse(config);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, stringify(checked), { mode: 0o600 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new MeshidError('ERR_INVALID_ARGUMENT', `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
}

/** The control plane in use, if any; the CLI then needs no kubeconfig. */
export async function currentControlPlane(file: string = controlPlanesFile()): Promise<ControlPlane | undefined> {
  const config = await readControlPlanes(file);
  return config.controlPlanes.find((cp) => cp.name === config.currentControlPlane);
}

function notFound(config: ControlPlanesConfig, name: string): MeshidError {
  const known = config.controlPlanes.map((cp) => cp.name);
  return new MeshidError('ERR_NOT_FOUND', `no control plane is named "${name}"`, {
    hint: known.length > 0 ? `Known control planes: ${known.join(', ')}.` : `There are none yet; add one with: ${ADD_USAGE}`,
  });
}

/** Adds (or with overwrite, replaces) a control plane and makes it current, as kumactl does. */
export function addControlPlane(config: ControlPlanesConfig, controlPlane: ControlPlane, options: { overwrite?: boolean | undefined } = {}): ControlPlanesConfig {
  const exists = config.controlPlanes.some((cp) => cp.name === controlPlane.name);
  if (exists && !options.overwrite) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `a control plane named "${controlPlane.name}" already exists`, {
      hint: 'Pass --overwrite to replace it, or pick another --name.',
    });
  }
  const controlPlanes = exists ? config.controlPlanes.map((cp) => (cp.name === controlPlane.name ? controlPlane : cp)) : [...config.controlPlanes, controlPlane];
  return { controlPlanes, currentControlPlane: controlPlane.name };
}

export function useControlPlane(config: ControlPlanesConfig, name: string): ControlPlanesConfig {
  if (!config.controlPlanes.some((cp) => cp.name === name)) throw notFound(config, name);
  return { ...config, currentControlPlane: name };
}

/** Removing the current one leaves none current: the CLI falls back to the kubeconfig. */
export function removeControlPlane(config: ControlPlanesConfig, name: string): ControlPlanesConfig {
  if (!config.controlPlanes.some((cp) => cp.name === name)) throw notFound(config, name);
  const controlPlanes = config.controlPlanes.filter((cp) => cp.name !== name);
  return config.currentControlPlane === name ? { controlPlanes } : { ...config, controlPlanes };
}

export interface AddControlPlaneInput {
  name?: string | undefined;
  address?: string | undefined;
  authType?: string | undefined;
  /** Each `--auth-conf key=value` as typed. */
  authConf?: string[] | undefined;
  caCertFile?: string | undefined;
  skipVerify?: boolean | undefined;
  clientCertFile?: string | undefined;
  clientKeyFile?: string | undefined;
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

function certificate(flag: string, path: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `${flag} ${path} is not a PEM certificate`, { cause: error });
  }
}

/** Checks the flags of `control-planes add` and reads the files they name; every error names the flag. */
export async function controlPlaneFromFlags(input: AddControlPlaneInput): Promise<ControlPlane> {
  if (!input.name) throw new MeshidError('ERR_INVALID_ARGUMENT', '--name is required', { hint: `For example: ${ADD_USAGE}` });
  if (!input.address) throw new MeshidError('ERR_INVALID_ARGUMENT', '--address is required', { hint: `For example: ${ADD_USAGE}` });
  if (!isHttpAddress(input.address)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', `--address "${input.address}" is not an http:// or https:// URL`, {
      hint: "Use meshid's API address, e.g. https://HOST:5682, or http://HOST:5681.",
    });
  }
  if (input.authType !== 'tokens') {
    throw new MeshidError('ERR_INVALID_ARGUMENT', input.authType === undefined ? '--auth-type is required' : `--auth-type "${input.authType}" is not supported`, {
      hint: 'Use --auth-type tokens with --auth-conf token=TOKEN (a user token, e.g. the admin token in Secret admin-user-token).',
    });
  }
  const conf = new Map<string, string>();
  for (const entry of input.authConf ?? []) {
    const at = entry.indexOf('=');
    // Never echo the value: it is a token.
    if (at <= 0) throw new MeshidError('ERR_INVALID_ARGUMENT', '--auth-conf must be key=value', { hint: 'Use --auth-conf token=TOKEN.' });
    const key = entry.slice(0, at);
    if (key !== 'token') throw new MeshidError('ERR_INVALID_ARGUMENT', `--auth-conf key "${key}" is not supported`, { hint: 'The tokens auth type takes only --auth-conf token=TOKEN.' });
    conf.set(key, entry.slice(at + 1));
  }
  const token = conf.get('token');
  if (!token) throw new MeshidError('ERR_INVALID_ARGUMENT', '--auth-conf token=TOKEN is required with --auth-type tokens', { hint: 'Use --auth-conf token=TOKEN.' });

  if (input.caCertFile !== undefined && input.skipVerify) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', '--ca-cert-file and --skip-verify cannot be used together', {
      hint: "Pass --ca-cert-file to check the server's certificate, or --skip-verify not to check it.",
    });
  }
  if ((input.clientCertFile === undefined) !== (input.clientKeyFile === undefined)) {
    throw new MeshidError('ERR_INVALID_ARGUMENT', '--client-cert-file and --client-key-file go together', { hint: 'Pass both, or neither.' });
  }
  const tls = input.caCertFile !== undefined || input.skipVerify || input.clientCertFile !== undefined;
  // TLS settings on an http:// address would be silently ignored; a typo in the scheme is likelier.
  if (tls && new URL(input.address).protocol !== 'https:') {
    throw new MeshidError('ERR_INVALID_ARGUMENT', '--ca-cert-file, --skip-verify and client certificates need an https:// address', {
      hint: 'Use https://HOST:5682, or drop the TLS flags for http://HOST:5681.',
    });
  }

  const controlPlane: ControlPlane = { name: input.name, address: input.address, authType: 'tokens', authConf: { token } };
  if (input.caCertFile !== undefined) {
    const pem = await readPem('--ca-cert-file', input.caCertFile);
    certificate('--ca-cert-file', input.caCertFile, pem);
    controlPlane.caCertData = pem;
  }
  if (input.skipVerify) controlPlane.skipVerify = true;
  if (input.clientCertFile !== undefined && input.clientKeyFile !== undefined) {
    const certPem = await readPem('--client-cert-file', input.clientCertFile);
    const keyPem = await readPem('--client-key-file', input.clientKeyFile);
    const cert = certificate('--client-cert-file', input.clientCertFile, certPem);
    let key;
    try {
      key = createPrivateKey(keyPem);
    } catch (error) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', `--client-key-file ${input.clientKeyFile} is not a PEM private key`, { cause: error });
    }
    // A mismatched pair would only fail later, as an opaque TLS handshake error.
    if (!cert.checkPrivateKey(key)) {
      throw new MeshidError('ERR_INVALID_ARGUMENT', `--client-key-file ${input.clientKeyFile} is not the key of --client-cert-file ${input.clientCertFile}`);
    }
    controlPlane.clientCertData = certPem;
    controlPlane.clientKeyData = keyPem;
  }
  return ControlPlaneSchema.parse(controlPlane);
}

/** Enough to tell tokens apart by length, nothing that would let anyone use one. */
export function redactToken(token: string): string {
  return `(redacted, ${token.length} chars)`;
}

/** What `list` and `config get` show: certificates by subject and expiry, key and token redacted. */
export interface ControlPlaneView {
  name: string;
  current: boolean;
  address: string;
  authType: 'tokens';
  authConf: { token: string };
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
  skipVerify?: boolean;
}

function describeCertificate(pem: string): string {
  try {
    const cert = new X509Certificate(pem);
    return `${cert.subject.replace(/\n/g, ', ')} (valid to ${cert.validTo})`;
  } catch {
    return '(unreadable certificate)';
  }
}

export function controlPlaneView(controlPlane: ControlPlane, current: boolean, options: { showToken?: boolean | undefined } = {}): ControlPlaneView {
  const view: ControlPlaneView = {
    name: controlPlane.name,
    current,
    address: controlPlane.address,
    authType: controlPlane.authType,
    authConf: { token: options.showToken ? controlPlane.authConf.token : redactToken(controlPlane.authConf.token) },
  };
  if (controlPlane.caCertData !== undefined) view.caCert = describeCertificate(controlPlane.caCertData);
  if (controlPlane.clientCertData !== undefined) view.clientCert = describeCertificate(controlPlane.clientCertData);
  if (controlPlane.clientKeyData !== undefined) view.clientKey = '(redacted)';
  if (controlPlane.skipVerify) view.skipVerify = true;
  return view;
}

export function listControlPlanes(config: ControlPlanesConfig): ControlPlaneView[] {
  return config.controlPlanes.map((cp) => controlPlaneView(cp, cp.name === config.currentControlPlane));
}
