import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeKubeconfig } from '../support/kubeconfig-file.ts';
import { storedSession } from '../../src/cli/stored-session.ts';

const dir = await mkdtemp(join(tmpdir(), 'meshid-cli-stored-session-'));
after(() => rm(dir, { recursive: true, force: true }));

const inAnHour = (): string => new Date(Date.now() + 3_600_000).toISOString();
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** A kubeconfig with one context `ctx` whose meshid extension is `extension`. */
async function kubeconfig(name: string, extension: Record<string, unknown> | undefined, cluster = 'c'): Promise<string> {
  return writeKubeconfig(join(dir, `${name}.yaml`), { user: { token: 'kube-token' }, extension, cluster });
}

describe('storedSession: a fresh ID token and a server, read without the Kubernetes client', () => {
  it('gives the token, the server and its CA', async () => {
    const file = await kubeconfig('fresh', { server: 'https://127.0.0.1:5682', 'certificate-authority-data': Buffer.from(CA_PEM).toString('base64'), token: 'id-token', expiresAt: inAnHour() });
    const session = await storedSession({ kubeconfig: file, context: undefined }, {});
    assert.equal(session?.context, 'ctx');
    assert.equal(session?.token, 'id-token');
    assert.equal(session?.base.href, 'https://127.0.0.1:5682/');
    assert.deepEqual(session?.tls, { ca: CA_PEM });
  });

  it('takes --url and --insecure-skip-tls-verify over the stored server', async () => {
    const file = await kubeconfig('url', { server: 'https://127.0.0.1:5682', token: 'id-token', expiresAt: inAnHour() });
    const session = await storedSession({ kubeconfig: file, context: undefined }, { url: 'http://127.0.0.1:5681', insecureSkipTlsVerify: true });
    assert.equal(session?.base.href, 'http://127.0.0.1:5681/');
    assert.deepEqual(session?.tls, { rejectUnauthorized: false });
  });

  it('leaves everything it does not cover to the full path', async () => {
    const cases: Record<string, Record<string, unknown> | undefined> = {
      'no extension': undefined,
      'no server (the service proxy needs the credential)': { token: 'id-token', expiresAt: inAnHour() },
      'no token': { server: 'https://127.0.0.1:5682' },
      'a token about to expire': { server: 'https://127.0.0.1:5682', token: 'id-token', expiresAt: new Date(Date.now() + 30_000).toISOString() },
      'a server that is no URL': { server: 'not a url', token: 'id-token', expiresAt: inAnHour() },
      'a field of the wrong type': { server: 'https://127.0.0.1:5682', token: 42, expiresAt: inAnHour() },
    };
    for (const [name, extension] of Object.entries(cases)) {
      const file = await kubeconfig(name.replace(/\W+/g, '-'), extension);
      assert.equal(await storedSession({ kubeconfig: file, context: undefined }, {}), undefined, name);
    }
    const fresh = { server: 'https://127.0.0.1:5682', token: 'id-token', expiresAt: inAnHour() };
    assert.equal(await storedSession({ kubeconfig: await kubeconfig('no-cluster', fresh, 'missing'), context: undefined }, {}), undefined, 'a context without its cluster');
    assert.equal(await storedSession({ kubeconfig: await kubeconfig('other-context', fresh), context: 'other' }, {}), undefined, 'a --context the file lacks');
    assert.equal(await storedSession({ kubeconfig: join(dir, 'absent.yaml'), context: undefined }, {}), undefined, 'a missing file');
  });

  it('leaves a $KUBECONFIG list, which kubectl merges, to the full path', async () => {
    const file = await kubeconfig('listed', { server: 'https://127.0.0.1:5682', token: 'id-token', expiresAt: inAnHour() });
    const saved = process.env['KUBECONFIG'];
    try {
      process.env['KUBECONFIG'] = file;
      assert.equal((await storedSession({ kubeconfig: undefined, context: undefined }, {}))?.token, 'id-token');
      process.env['KUBECONFIG'] = [file, join(dir, 'other.yaml')].join(delimiter);
      assert.equal(await storedSession({ kubeconfig: undefined, context: undefined }, {}), undefined);
    } finally {
      if (saved === undefined) delete process.env['KUBECONFIG'];
      else process.env['KUBECONFIG'] = saved;
    }
  });
});

describe('the bundled CLI', () => {
  it('loads no Kubernetes client, server or logger for --version, --help and whoami with a stored session', async () => {
    // Every chunk the entry imports statically loads with it; the commands' own chunks are
    // imported dynamically, when they run.
    const bundle = new URL('../../dist/bin/', import.meta.url);
    assert.ok((await readdir(bundle)).includes('meshid.js'), 'run `npm run build` first');
    const seen = new Set<string>();
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = await readFile(new URL(file, bundle), 'utf8');
      for (const [, chunk = ''] of code.matchAll(/^import [^;]*?from "\.\/([^"]+\.js)";$/gm)) await visit(chunk);
    };
    await visit('meshid.js');
    const loaded = (await Promise.all([...seen].map((file) => readFile(new URL(file, bundle), 'utf8')))).join('\n');
    for (const heavy of ['node_modules/@kubernetes/client-node/', 'node_modules/fastify/', 'node_modules/pino/', 'node_modules/ora/', 'node_modules/zod/']) {
      assert.ok(!loaded.includes(heavy), `${heavy} is in the chunks every command loads`);
    }
  });
});
