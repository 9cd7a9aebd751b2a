import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { KubeConfig, ResponseContext, ServerConfiguration, createConfiguration, wrapHttpLibrary, type RequestContext } from '@kubernetes/client-node';
import { MeshidError } from '../core/index.ts';

/** Who a call goes out as: the shape of a Kubernetes UserInfo. */
export interface ImpersonatedUser {
  name: string;
  groups: string[];
  uid?: string | undefined;
  extra?: Record<string, string[]> | undefined;
}

/** A call made as someone else gives up after this long; a hung apiserver is an outage, not a wait. */
export const IMPERSONATED_CALL_TIMEOUT_MS = 10_000;

/**
 * Header values go out as UTF-8 bytes, as client-go sends them. Node only writes Latin-1
 * strings, so the UTF-8 bytes are handed over as one Latin-1 character each.
 */
const utf8Bytes = (value: string): string => Buffer.from(value, 'utf8').toString('latin1');

/** Percent-encodes everything outside RFC 9110's token characters; Kubernetes decodes it. */
const extraKey = (key: string): string =>
  encodeURIComponent(key)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .toLowerCase();

const isControl = (code: number): boolean => code < 0x20 || code === 0x7f;
const isBlank = (char: string | undefined): boolean => char === ' ' || char === '\t';

/**
 * Whether a name or group would reach Kubernetes as something else when impersonated: HTTP
 * header values cannot carry control characters, and the apiserver trims spaces and tabs
 * around each one (" system:masters" arrives as system:masters).
 */
export function changedInTransit(value: string): boolean {
  return isBlank(value[0]) || isBlank(value.at(-1)) || [...value].some((c) => isControl(c.charCodeAt(0)));
}

/**
 * Impersonate-User, one Impersonate-Group per group, Impersonate-Uid and Impersonate-Extra-*.
 * An identity Kubernetes would receive changed is refused rather than sent: the account that
 * impersonates may impersonate anyone, so what arrives must be exactly who the caller is.
 */
export function impersonationHeaders(user: ImpersonatedUser): OutgoingHttpHeaders {
  const values = [user.name, ...user.groups, ...(user.uid ? [user.uid] : []), ...Object.values(user.extra ?? {}).flat()];
  if (values.some(changedInTransit)) {
    throw new MeshidError('ERR_FORBIDDEN', `${JSON.stringify(user.name)} cannot be impersonated: a name, group, uid or extra holds control characters or surrounding spaces, which Kubernetes would receive changed`);
  }
  const headers: OutgoingHttpHeaders = { 'impersonate-user': utf8Bytes(user.name) };
  if (user.groups.length > 0) headers['impersonate-group'] = user.groups.map(utf8Bytes);
  if (user.uid) headers['impersonate-uid'] = utf8Bytes(user.uid);
  for (const [key, values] of Object.entries(user.extra ?? {})) {
    headers[`impersonate-extra-${extraKey(key)}`] = values.map(utf8Bytes);
  }
  return headers;
}

/**
 * The generated clients send one value per header name, and impersonating groups needs one
 * Impersonate-Group header per group; so requests go out through Node's http(s) directly.
 */
function impersonatingHttpLibrary(user: ImpersonatedUser, timeoutMs: number) {
  return wrapHttpLibrary({
    send(context: RequestContext): Promise<ResponseContext> {
      const url = new URL(context.getUrl());
      const body = context.getBody() as string | Buffer | undefined;
      const headers: OutgoingHttpHeaders = { ...context.getHeaders(), ...impersonationHeaders(user) };
      const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
      return new Promise((resolve, reject) => {
        const req = request(url, { method: context.getHttpMethod(), headers, agent: context.getAgent(), timeout: timeoutMs }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const buffer = Buffer.concat(chunks);
            const answerHeaders: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') answerHeaders[name] = value;
            resolve(new ResponseContext(res.statusCode ?? 502, answerHeaders, { text: async () => buffer.toString('utf8'), binary: async () => buffer }));
          });
        });
        req.on('timeout', () => req.destroy(Object.assign(new Error(`the apiserver did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
        req.on('error', reject);
        context.getSignal()?.addEventListener('abort', () => req.destroy(new Error('aborted')));
        req.end(body);
      });
    },
  });
}

/** A KubeConfig whose API clients call as `user`, authenticated as the original credential. */
class ImpersonatingKubeConfig extends KubeConfig {
  constructor(
    private readonly user: ImpersonatedUser,
    private readonly timeoutMs: number,
  ) {
    super();
  }

  override makeApiClient<T>(apiClientType: new (config: ReturnType<typeof createConfiguration>) => T): T {
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('No active cluster!');
    return new apiClientType(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        httpApi: impersonatingHttpLibrary(this.user, this.timeoutMs),
      }),
    );
  }
}

/**
 * `kc`, but every API client made from it acts as `user`: Kubernetes RBAC then judges the
 * user, and the audit log names them, while meshid's own credential authenticates.
 */
export function impersonate(kc: KubeConfig, user: ImpersonatedUser, timeoutMs = IMPERSONATED_CALL_TIMEOUT_MS): KubeConfig {
  const copy = new ImpersonatingKubeConfig(user, timeoutMs);
  copy.loadFromOptions({ clusters: kc.clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
  return copy;
}
