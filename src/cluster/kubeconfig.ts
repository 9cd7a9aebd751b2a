import { stringify } from 'yaml';

export const PLAYGROUND_CLUSTER = 'meshid-playground';

export type UserCredential =
  | { type: 'certificate'; certPem: string; keyPem: string }
  | { type: 'token'; token: string }
  | { type: 'exec'; command: string; args: string[] };

/** A kubeconfig with one cluster, one user and one context named `<user>@meshid-playground`. */
export function renderKubeconfig(server: string, caPem: string, userName: string, credential: UserCredential): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const user = {
    certificate: (c: Extract<UserCredential, { type: 'certificate' }>) => ({
      'client-certificate-data': b64(c.certPem),
      'client-key-data': b64(c.keyPem),
    }),
    token: (c: Extract<UserCredential, { type: 'token' }>) => ({ token: c.token }),
    exec: (c: Extract<UserCredential, { type: 'exec' }>) => ({
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1',
        command: c.command,
        args: c.args,
        interactiveMode: 'Never',
        provideClusterInfo: false,
      },
    }),
  };
  const context = `${userName}@${PLAYGROUND_CLUSTER}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: PLAYGROUND_CLUSTER, cluster: { server, 'certificate-authority-data': b64(caPem) } }],
    users: [{ name: userName, user: pick(user, credential) }],
    contexts: [{ name: context, context: { cluster: PLAYGROUND_CLUSTER, user: userName } }],
    'current-context': context,
  });
}

function pick(
  renderers: { [K in UserCredential['type']]: (c: Extract<UserCredential, { type: K }>) => object },
  credential: UserCredential,
): object {
  return (renderers[credential.type] as (c: UserCredential) => object)(credential);
}
