import { MeshidError } from '../core/index.ts';

/**
 * The `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret: what `docker login`
 * writes and what the kubelet reads to pull images. Only `auths` matters to a pull secret;
 * credential helpers (`credsStore`, `credHelpers`) live on the machine that ran docker.
 */
export interface DockerConfig {
  auths: Record<string, DockerAuth>;
}

export interface DockerAuth {
  username?: string;
  password?: string;
  /** base64 of `username:password`. */
  auth?: string;
  email?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** What may be shown of an entry: never a password, an auth string or a token. */
export interface RegistryServer {
  server: string;
  username: string;
}

export const DOCKER_CONFIG_KEY = '.dockerconfigjson';
export const DOCKER_CONFIG_TYPE = 'kubernetes.io/dockerconfigjson';

const invalid = (message: string, hint?: string): MeshidError => new MeshidError('ERR_REGISTRY_INVALID', message, hint ? { hint } : {});

/** An entry name is a Secret name and a label value: a DNS-1123 label. */
export function checkEntryName(name: string | undefined): string {
  if (!name) throw invalid('a registry entry needs a name', 'Pass --name, e.g. --name ecr.');
  if (name.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    throw invalid(`"${name}" is not a valid entry name: lower-case letters, digits and "-", at most 63 characters`);
  }
  return name;
}

/**
 * A registry address as docker writes it: `host[:port][/path]`, optionally with an
 * http(s):// scheme (`https://index.docker.io/v1/`).
 */
export function checkServer(server: string | undefined): string {
  const value = server?.trim();
  if (!value) throw invalid('a registry entry needs a server', 'Pass --server, e.g. --server 123456789012.dkr.ecr.eu-west-1.amazonaws.com.');
  const rest = value.replace(/^https?:\/\//, '');
  const match = /^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?)(:(\d{1,5}))?(\/[^\s]*)?$/.exec(rest);
  const port = match?.[4] === undefined ? undefined : Number(match[4]);
  if (!match || (port !== undefined && (port < 1 || port > 65535))) {
    throw invalid(`"${value}" is not a registry address (host[:port][/path])`);
  }
  return value;
}

/** `auth` decoded, when it is a base64 `user:password`. */
function decodeAuth(auth: string): { username: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(auth)) return undefined;
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

const STRING_FIELDS = ['username', 'password', 'auth', 'email', 'identitytoken', 'registrytoken'] as const;

/** Checks one `auths` entry and answers the user it authenticates as. */
function checkAuth(server: string, value: unknown): { auth: DockerAuth; username: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`auths["${server}"] must be an object`);
  const raw = value as Record<string, unknown>;
  const auth: DockerAuth = {};
  for (const field of STRING_FIELDS) {
    const v = raw[field];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw invalid(`auths["${server}"].${field} must be a string`);
    if (v !== '') auth[field] = v;
  }
  const decoded = auth.auth === undefined ? undefined : decodeAuth(auth.auth);
  if (auth.auth !== undefined && !decoded) throw invalid(`auths["${server}"].auth is not base64 of "user:password"`);
  if (decoded && auth.username !== undefined && decoded.username !== auth.username) {
    throw invalid(`auths["${server}"]: auth is for user "${decoded.username}" but username says "${auth.username}"`);
  }
  const username = auth.username ?? decoded?.username;
  const hasPassword = (auth.username !== undefined && auth.password !== undefined) || decoded !== undefined;
  if (!hasPassword && auth.identitytoken === undefined && auth.registrytoken === undefined) {
    throw invalid(
      `auths["${server}"] holds no credentials`,
      'docker keeps them in a credential helper (credsStore/credHelpers) on the machine that logged in; pass --server, --username and --password-stdin instead.',
    );
  }
  return { auth, username: username ?? '(token)' };
}

/** Parses and checks a docker config (`--docker-config FILE`, or a stored Secret). */
export function parseDockerConfig(text: string, source = 'the docker config'): DockerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new MeshidError('ERR_REGISTRY_INVALID', `${source} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid(`${source} must be a JSON object with "auths"`);
  const auths = (json as { auths?: unknown }).auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw invalid(`${source} has no "auths" object`, 'Use the format of ~/.docker/config.json: {"auths": {"registry.example.com": {"auth": "…"}}}.');
  }
  const entries = Object.entries(auths as Record<string, unknown>);
  if (entries.length === 0) throw invalid(`${source} has no registries in "auths"`);
  const config: DockerConfig = { auths: {} };
  for (const [server, value] of entries) config.auths[checkServer(server)] = checkAuth(server, value).auth;
  return config;
}

/** The docker config `kubectl create secret docker-registry` would make. */
export function dockerConfigFor(server: string, username: string | undefined, password: string): DockerConfig {
  const address = checkServer(server);
  if (!username) throw invalid('a registry entry needs a username', 'Pass --username.');
  if (username.includes(':')) throw invalid('the username must not contain ":"');
  if (!password) throw invalid('the password is empty', 'Pipe it in: `echo "$PASSWORD" | meshid registry add … --password-stdin`.');
  return { auths: { [address]: { username, password, auth: Buffer.from(`${username}:${password}`).toString('base64') } } };
}

/** docker login --password-stdin drops one trailing newline, and so do we. */
export function passwordFromStdin(text: string): string {
  return text.replace(/\r?\n$/, '');
}

/** Servers and users of a config: the only parts of it that are ever printed. */
export function summarize(config: DockerConfig): RegistryServer[] {
  return Object.entries(config.auths).map(([server, auth]) => ({ server, username: checkAuth(server, auth).username }));
}

export function serializeDockerConfig(config: DockerConfig): string {
  return JSON.stringify(config);
}
