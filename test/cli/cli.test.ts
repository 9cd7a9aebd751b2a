import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { DEFAULT_GRACE_MS, DEFAULT_PROPAGATION_MS } from '../../src/ca/index.ts';
import { RECOVERY_CA_GRACE_MS, RECOVERY_CA_PROPAGATION_MS } from '../../src/recovery/index.ts';
import { parseDuration } from '../../src/tokens/index.ts';
import { durationText } from '../../src/cli/flags.ts';
import { runCli } from '../support/cli.ts';

describe('meshid CLI basics', () => {
  it('prints the package version with --version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const res = await runCli(['--version']);
    assert.equal(res.code, 0);
    assert.equal(res.stdout.trim(), pkg.version);
  });

  it('lists kubectl-style global flags in --help', async () => {
    const res = await runCli(['--help']);
    assert.equal(res.code, 0);
    for (const flag of ['--kubeconfig', '--context', '-n, --namespace', '-o, --output', 'up', 'down']) assert.ok(res.stdout.includes(flag), flag);
  });

  it('refuses an unknown output format with a one-line error, its code and a non-zero exit', async () => {
    const res = await runCli(['down', '--dir', '/nonexistent', '-o', 'xml']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: unknown output format "xml" \[ERR_INVALID_ARGUMENT\]$/m);
  });

  it('exits non-zero on an unknown command', async () => {
    const res = await runCli(['frobnicate']);
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /unknown command/);
  });

  it("shows the CA's own rotation defaults, defined once, in ca rotate, ca set and recover", async () => {
    for (const ms of [30_000, 3_600_000, 90_000, 5_000, 1_500, 86_400_000]) assert.equal(parseDuration(durationText(ms)), ms, String(ms));
    assert.equal(durationText(3_600_000), '1h');
    const shows = (help: string, flag: string, ms: number): void => assert.match(help.replace(/\s+/g, ' '), new RegExp(`${flag} <duration> [^-]*\\(default: "${durationText(ms)}"\\)`), flag);
    const rotate = (await runCli(['ca', 'rotate', '--help'])).stdout;
    shows(rotate, '--propagation', DEFAULT_PROPAGATION_MS);
    shows(rotate, '--grace', DEFAULT_GRACE_MS);
    shows((await runCli(['ca', 'set', '--help'])).stdout, '--grace', DEFAULT_GRACE_MS);
    const recover = (await runCli(['recover', '--help'])).stdout;
    shows(recover, '--ca-propagation', RECOVERY_CA_PROPAGATION_MS);
    shows(recover, '--ca-grace', RECOVERY_CA_GRACE_MS);
  });
});
