import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Command } from 'commander';
import { isMeshidError } from '../../src/core/index.ts';
import { AGENT_ENVIRONMENT, parseAgentConfig, type AgentConfig } from '../../src/agent/index.ts';
import { agentConfigInput } from '../../src/cli/agent-commands.ts';
import { buildProgram } from '../../src/cli/main.ts';

/** Runs the real `meshid` program up to the agent's action, and answers the settings it would start with. */
async function assemble(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentConfig> {
  const program = buildProgram();
  const agent = program.commands.find((c) => c.name() === 'agent') as Command;
  let config: AgentConfig | undefined;
  agent.action(async (_flags: unknown, command: Command) => {
    config = parseAgentConfig(await agentConfigInput(command, env, AGENT_ENVIRONMENT));
  });
  await program.parseAsync(['node', 'meshid', 'agent', ...args]);
  assert.ok(config);
  return config;
}

describe('meshid agent settings: file < MESHID_* environment < flags given', () => {
  let dir = '';
  let file = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-agent-config-'));
    file = join(dir, 'agent.yaml');
    await writeFile(file, 'caAddress: ca.file:1\ntrustDomain: file.example\ncertificateTtlSeconds: 600\nsocketMode: 384\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('has its defaults in the schema', async () => {
    const c = await assemble([]);
    assert.deepEqual(
      [c.namespace, c.socketPath, c.caAddress, c.trustDomain, c.keyType, c.certificateTtlSeconds, c.rootConfigMap, c.socketMode, c.directoryMode],
      ['meshid-system', '/var/run/sds/uds_path', 'meshid.meshid-system.svc:15012', 'cluster.local', 'ec', 86400, 'istio-ca-root-cert', 0o660, 0o750],
    );
  });

  it('reads the file, lets the environment override it, and flags given override both', async () => {
    assert.deepEqual(pick(await assemble(['--config', file])), ['ca.file:1', 'file.example', 600, 0o600]);
    assert.deepEqual(pick(await assemble(['--config', file], { MESHID_CA_ADDRESS: 'ca.env:2', MESHID_CERTIFICATE_TTL_SECONDS: '700' })), ['ca.env:2', 'file.example', 700, 0o600]);
    const flags = ['--config', file, '--ca-address', 'ca.flag:3', '--certificate-ttl', '15m', '--socket-mode', '640'];
    assert.deepEqual(pick(await assemble(flags, { MESHID_CA_ADDRESS: 'ca.env:2', MESHID_CERTIFICATE_TTL_SECONDS: '700' })), ['ca.flag:3', 'file.example', 900, 0o640]);
  });

  it('names the failing flag or field', async () => {
    await assert.rejects(assemble(['--certificate-ttl', '500ms']), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /--certificate-ttl/.test(e.message));
    await assert.rejects(assemble(['--socket-mode', '999']), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /--socket-mode/.test(e.message));
    await assert.rejects(assemble(['--key-type', 'dsa']), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /keyType/.test(e.message));
    await assert.rejects(assemble(['--trust-domain', 'Bad/Domain']), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /trustDomain/.test(e.message));
  });
});

const pick = (c: AgentConfig): unknown[] => [c.caAddress, c.trustDomain, c.certificateTtlSeconds, c.socketMode];
