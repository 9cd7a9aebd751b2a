import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
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
});
