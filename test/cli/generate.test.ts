import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { isMeshidError, type ErrorCode } from '../../src/core/index.ts';
import { registerGenerateCommands, type OnlineUserTokenRequest } from '../../src/cli/generate-commands.ts';
import { AUTHENTICATED_GROUP, StaticPublicKeys, UserTokenValidator, noRevocations, parsePrivateKey, parsePublicKey, publicKeyPem } from '../../src/tokens/index.ts';

interface Online {
  calls: OnlineUserTokenRequest[];
  issue: (request: OnlineUserTokenRequest, command: Command) => Promise<string>;
}

function fakeOnline(): Online {
  const calls: OnlineUserTokenRequest[] = [];
  return { calls, issue: async (request) => (calls.push(request), 'token-from-server') };
}

/**
 * Runs `meshid generate …` in-process on a fresh program (commander keeps parse state) and
 * returns what it wrote to stdout. Only string writes are captured: the test runner's own
 * reports travel on stdout as Buffers and must pass through untouched.
 */
async function generate(args: string[], online: Online = fakeOnline()): Promise<string> {
  const program = new Command('meshid').exitOverride();
  registerGenerateCommands(program, online.issue);
  const original = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (typeof chunk === 'string') {
      out += chunk;
      return true;
    }
    return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
  });
  try {
    await program.parseAsync(['node', 'meshid', 'generate', ...args]);
  } finally {
    process.stdout.write = original;
  }
  return out;
}

async function assertRejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isMeshidError(error), `expected a MeshidError with ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

describe('meshid generate (offline issuing, as kumactl)', () => {
  let dir = '';
  let keyPath = '';
  let privatePem = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshid-generate-'));
    privatePem = await generate(['signing-key', '--format', 'pem']);
    keyPath = join(dir, 'key-private.pem');
    await writeFile(keyPath, privatePem);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('signing-key --format pem prints a 2048-bit PKCS#1 RSA key', () => {
    assert.match(privatePem, /^-----BEGIN RSA PRIVATE KEY-----\n[\s\S]+\n-----END RSA PRIVATE KEY-----\n$/);
    assert.equal(parsePrivateKey(privatePem).asymmetricKeyDetails?.modulusLength, 2048);
  });

  it('signing-key defaults to pem-base64, which decodes to the PEM', async () => {
    const out = await generate(['signing-key']);
    assert.match(out, /^[A-Za-z0-9+/]+=*\n$/);
    const pem = Buffer.from(out.trim(), 'base64').toString('utf8');
    assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.equal(parsePrivateKey(pem).asymmetricKeyDetails?.modulusLength, 2048);
    assert.notEqual(pem, privatePem);
  });

  it('signing-key refuses an unknown --format with ERR_INVALID_ARGUMENT', async () => {
    await assertRejectsWith(generate(['signing-key', '--format', 'der']), 'ERR_INVALID_ARGUMENT');
  });

  it('signing-key → public-key → user-token offline gives a token the server validates with that public key', async () => {
    const publicPem = await generate(['public-key', '--signing-key-path', keyPath]);
    assert.match(publicPem, /^-----BEGIN RSA PUBLIC KEY-----\n[\s\S]+\n-----END RSA PUBLIC KEY-----\n$/);
    assert.equal(publicPem, publicKeyPem(parsePrivateKey(privatePem)));

    const online = fakeOnline();
    const out = await generate(['user-token', '--name', 'john', '--group', 'team-a', '--group', 'users', '--valid-for', '24h', '--signing-key-path', keyPath, '--kid', 'key-1'], online);
    assert.equal(online.calls.length, 0, 'offline issuing must not ask the server');
    assert.match(out, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = out.trim();

    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: 'key-1', key: parsePublicKey(publicPem) }])], noRevocations);
    const user = validator.validate(token);
    // Who the token is to Kubernetes: its Name and Groups under the identity prefix.
    assert.equal(user.name, 'mesh-system:john');
    assert.deepEqual(user.groups, ['mesh-system:team-a', 'mesh-system:users', AUTHENTICATED_GROUP]);
    // 24h from now, give or take the seconds this test takes.
    assert.ok(Math.abs(user.expiresAt - (Date.now() + 24 * 3600 * 1000)) < 60_000, `expiresAt ${user.expiresAt}`);
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as unknown;
    assert.deepEqual(header, { alg: 'RS256', kid: 'key-1', typ: 'JWT' });
  });

  it('reads base64-wrapped PEM key files, as signing-key prints by default', async () => {
    const wrappedPath = join(dir, 'key-private.b64');
    await writeFile(wrappedPath, await generate(['signing-key']));
    const publicPem = await generate(['public-key', '--signing-key-path', wrappedPath]);
    const token = (await generate(['user-token', '--name', 'jane', '--valid-for', '1h', '--signing-key-path', wrappedPath, '--kid', '7'])).trim();
    const validator = new UserTokenValidator([new StaticPublicKeys([{ kid: '7', key: parsePublicKey(publicPem) }])], noRevocations);
    assert.deepEqual(validator.validate(token).groups, [AUTHENTICATED_GROUP]);
  });

  it('refuses --signing-key-path without --kid with ERR_INVALID_ARGUMENT', async () => {
    await assertRejectsWith(generate(['user-token', '--name', 'john', '--valid-for', '24h', '--signing-key-path', keyPath]), 'ERR_INVALID_ARGUMENT', /--kid/);
  });

  it('refuses a missing or unreadable key file with ERR_INVALID_ARGUMENT and a hint', async () => {
    const missing = join(dir, 'nope.pem');
    const notAKey = join(dir, 'not-a-key.pem');
    await writeFile(notAKey, 'hello\n');
    for (const args of [
      ['public-key', '--signing-key-path', missing],
      ['public-key', '--signing-key-path', notAKey],
      ['public-key', '--signing-key-path', dir],
      ['user-token', '--name', 'john', '--valid-for', '1h', '--kid', '1', '--signing-key-path', missing],
    ]) {
      await assert.rejects(generate(args), (error: unknown) => {
        assert.ok(isMeshidError(error, 'ERR_INVALID_ARGUMENT'), String(error));
        assert.ok(error.message.includes(args.at(-1) ?? ''), `the message names the file: ${error.message}`);
        assert.ok(error.hint, 'a hint says how to make a key');
        return true;
      });
    }
    await assertRejectsWith(generate(['public-key']), 'ERR_INVALID_ARGUMENT', /--signing-key-path/);
  });

  it('refuses a missing --name, a missing or bad --valid-for with ERR_INVALID_ARGUMENT, before asking the server', async () => {
    const online = fakeOnline();
    for (const args of [['--valid-for', '24h'], ['--name', 'john'], ['--name', 'john', '--valid-for', '24'], ['--name', 'john', '--valid-for', '0s']]) {
      await assertRejectsWith(generate(['user-token', ...args], online), 'ERR_INVALID_ARGUMENT');
    }
    await assertRejectsWith(generate(['user-token', '--name', 'john', '--valid-for', '0s', '--signing-key-path', keyPath, '--kid', '1']), 'ERR_INVALID_ARGUMENT');
    assert.equal(online.calls.length, 0);
  });

  it('without --signing-key-path asks the server through the online hook with {name, groups, validFor}', async () => {
    const online = fakeOnline();
    const out = await generate(['user-token', '--name', 'john', '--group', 'team-a', '--group', 'team-b', '--valid-for', '24h'], online);
    assert.equal(out, 'token-from-server\n');
    assert.deepEqual(online.calls, [{ name: 'john', groups: ['team-a', 'team-b'], validFor: '24h' }]);

    const noGroups = fakeOnline();
    await generate(['user-token', '--name', 'jane', '--valid-for', '30m'], noGroups);
    assert.deepEqual(noGroups.calls, [{ name: 'jane', groups: [], validFor: '30m' }]);
  });

  it('refuses --kid without --signing-key-path, since the server picks its own key', async () => {
    const online = fakeOnline();
    await assertRejectsWith(generate(['user-token', '--name', 'john', '--valid-for', '24h', '--kid', '1'], online), 'ERR_INVALID_ARGUMENT', /--kid/);
    assert.equal(online.calls.length, 0);
  });
});
