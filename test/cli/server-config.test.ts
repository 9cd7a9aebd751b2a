import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Command } from 'commander';
import { environmentLayer, isMeshidError, mergeConfig } from '../../src/core/index.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { serverConfigInput } from '../../src/cli/server-commands.ts';
import { SERVER_ENVIRONMENT, parseServerConfig, type ServerConfigInput } from '../../src/server/index.ts';

/** Runs the real `meshid` program up to the server's action, and answers the config it would start with. */
async function assemble(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ReturnType<typeof parseServerConfig>> {
  const program = buildProgram();
  const server = program.commands.find((c) => c.name() === 'server') as Command;
  let input: ServerConfigInput | undefined;
  server.action(async (_flags: unknown, command: Command) => {
    input = (await serverConfigInput(command, env, SERVER_ENVIRONMENT));
  });
  await program.parseAsync(['node', 'meshid', 'server', ...args]);
  return parseServerConfig(input ?? {});
}

describe('meshid server settings: file < MESHID_* environment < flags given', () => {
  let dir = '';
  let file = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-config-'));
    file = join(dir, 'server.yaml');
    await writeFile(file, 'namespace: from-file\nhost: 127.0.0.1\nhttpPort: 0\nhttpsPort: 0\nca:\n  port: 0\n  trustDomain: file.example\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('takes host, ports and ca.port from --config when no flag names them (the ignored-settings bug)', async () => {
    const config = await assemble(['--config', file]);
    assert.deepEqual([config.namespace, config.host, config.httpPort, config.httpsPort, config.ca.port, config.ca.trustDomain], ['from-file', '127.0.0.1', 0, 0, 0, 'file.example']);
  });

  it('lets MESHID_* variables override the file, and keeps the file for what they do not name', async () => {
    const config = await assemble(['--config', file], { MESHID_HTTP_PORT: '8080', MESHID_CA_PORT: '9090', MESHID_CA_ENABLED: 'true' });
    assert.deepEqual([config.httpPort, config.httpsPort, config.ca.port, config.ca.enabled, config.ca.trustDomain], [8080, 0, 9090, true, 'file.example']);
  });

  it('lets flags given override both', async () => {
    const config = await assemble(['--config', file, '--http-port', '7070', '--ca-port', '7071', '-n', 'from-flag'], { MESHID_HTTP_PORT: '8080', MESHID_CA_PORT: '9090' });
    assert.deepEqual([config.httpPort, config.ca.port, config.namespace, config.ca.trustDomain], [7070, 7071, 'from-flag', 'file.example']);
  });

  it('falls back to the schema defaults with nothing given', async () => {
    const config = await assemble([]);
    assert.deepEqual([config.namespace, config.host, config.httpPort, config.httpsPort, config.ca.port, config.ca.trustDomain], ['meshid-system', '0.0.0.0', 5681, 5682, 15012, 'cluster.local']);
  });

  it('refuses an environment value of the wrong type, naming the variable', () => {
    assert.throws(() => environmentLayer({ MESHID_HTTP_PORT: '80a' }, SERVER_ENVIRONMENT), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /MESHID_HTTP_PORT/.test(e.message));
    assert.throws(() => environmentLayer({ MESHID_CA_ENABLED: 'yes' }, SERVER_ENVIRONMENT), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /MESHID_CA_ENABLED/.test(e.message));
  });

  it('merges nested layers key by key and replaces arrays whole', () => {
    assert.deepEqual(mergeConfig({ ca: { port: 1, audiences: ['a', 'b'] }, host: 'h' }, { ca: { audiences: ['c'] } }, { ca: { port: 2 }, host: undefined }), {
      ca: { port: 2, audiences: ['c'] },
      host: 'h',
    });
  });
});
