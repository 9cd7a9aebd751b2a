import { MeshidError } from './errors.ts';

// How a process's settings are assembled: a config file, then MESHID_* environment variables,
// then the flags actually given, each layer overriding the last; the process's schema then
// fills defaults and checks the result. Shared by the server and the agent.

/** A setting from the environment: where it goes in the config and how its text is read. */
export interface EnvSetting {
  path: string;
  type: 'string' | 'number' | 'boolean';
}

export type ConfigLayer = Record<string, unknown>;

/** A nested layer holding `value` at the dotted `path`, e.g. `ca.port`. */
export function layerAt(path: string, value: unknown): ConfigLayer {
  return path
    .split('.')
    .reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as ConfigLayer;
}

/**
 * The settings of `env` named in `table`, as a config layer. A value that is not of its
 * setting's type is refused with the variable's name, rather than read as something else.
 */
export function environmentLayer(env: NodeJS.ProcessEnv, table: Readonly<Record<string, EnvSetting>>): ConfigLayer {
  let layer: ConfigLayer = {};
  for (const [name, { path, type }] of Object.entries(table)) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    let value: string | number | boolean = text;
    if (type === 'number') {
      value = Number(text);
      if (!/^\d+$/.test(text)) throw new MeshidError('ERR_INVALID_ARGUMENT', `${name}=${JSON.stringify(text)} is not a whole number (it sets ${path})`);
    } else if (type === 'boolean') {
      if (text !== 'true' && text !== 'false') throw new MeshidError('ERR_INVALID_ARGUMENT', `${name}=${JSON.stringify(text)} is not true or false (it sets ${path})`);
      value = text === 'true';
    }
    layer = mergeConfig(layer, layerAt(path, value));
  }
  return layer;
}

const isPlainObject = (v: unknown): v is ConfigLayer => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Layers merged key by key, later ones winning: file < environment < flags given. Nested
 * objects merge (a flag for `ca.port` keeps the file's `ca.trustDomain`); arrays and other
 * values are replaced whole. Defaults are not a layer: the schema fills what no layer set.
 */
export function mergeConfig(...layers: ConfigLayer[]): ConfigLayer {
  const out: ConfigLayer = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const current = out[key];
      out[key] = isPlainObject(current) && isPlainObject(value) ? mergeConfig(current, value) : value;
    }
  }
  return out;
}

/** A schema's safeParse answer, as zod gives it; structural, so core needs no zod. */
export type SchemaResult<T> = { success: true; data: T } | { success: false; error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] } };

/** The parsed settings, or ERR_INVALID_ARGUMENT naming the first failing field, e.g. `server config ca.port: …`. */
export function checkedConfig<T>(result: SchemaResult<T>, what: string): T {
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new MeshidError('ERR_INVALID_ARGUMENT', `${what} ${issue?.path.map(String).join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
}
