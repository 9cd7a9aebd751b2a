import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import { checkEntryName, checkServer, desiredPullSecrets, dockerConfigFor, parseDockerConfig, passwordFromStdin, summarize } from '../../src/registry/index.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const invalid = (fn: () => unknown, pattern?: RegExp): void => {
  assert.throws(fn, (error: unknown) => isMeshidError(error, 'ERR_REGISTRY_INVALID') && (pattern === undefined || pattern.test(error.message)));
};

describe('docker config parsing and checks', () => {
  it('accepts the forms docker and kubectl write: auth, username+password, identity token', () => {
    const config = parseDockerConfig(
      JSON.stringify({
        auths: {
          'registry.example.com': { auth: b64('robot:pw') },
          'https://index.docker.io/v1/': { username: 'me', password: 'pw', email: 'me@example.com' },
          '123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/team': { identitytoken: 'tok' },
          '[::1]:5000': { username: 'v6', password: 'pw', auth: b64('v6:pw') },
        },
        credsStore: 'desktop',
      }),
    );
    assert.deepEqual(Object.keys(config), ['auths'], 'only auths is kept: helpers live on the docker machine');
    assert.deepEqual(summarize(config), [
      { server: 'registry.example.com', username: 'robot' },
      { server: 'https://index.docker.io/v1/', username: 'me' },
      { server: '123456789012.dkr.ecr.eu-west-1.amazonaws.com:443/team', username: '(token)' },
      { server: '[::1]:5000', username: 'v6' },
    ]);
  });

  it('refuses invalid JSON, a missing or empty auths, and non-objects, naming the source', () => {
    invalid(() => parseDockerConfig('{"auths": {"x"', '--docker-config f.json'), /--docker-config f\.json is not valid JSON/);
    invalid(() => parseDockerConfig('[]'), /JSON object/);
    invalid(() => parseDockerConfig('{"registry.example.com": {"auth": "eDp5"}}'), /no "auths"/);
    invalid(() => parseDockerConfig('{"auths": {}}'), /no registries/);
    invalid(() => parseDockerConfig('{"auths": {"r.example.com": "robot:pw"}}'), /must be an object/);
    invalid(() => parseDockerConfig('{"auths": {"r.example.com": {"username": 7, "password": "x"}}}'), /username must be a string/);
  });

  it('refuses an entry with no credentials (a credential helper holds them) and says what to do', () => {
    assert.throws(
      () => parseDockerConfig('{"auths": {"r.example.com": {}}, "credsStore": "osxkeychain"}'),
      (error: unknown) => isMeshidError(error, 'ERR_REGISTRY_INVALID') && /holds no credentials/.test(error.message) && /--password-stdin/.test(error.hint ?? ''),
    );
    invalid(() => parseDockerConfig('{"auths": {"r.example.com": {"username": "u"}}}'), /holds no credentials/);
  });

  it('refuses an auth that is not base64 user:password, or that disagrees with username', () => {
    invalid(() => parseDockerConfig(JSON.stringify({ auths: { 'r.example.com': { auth: 'not base64!' } } })), /not base64/);
    invalid(() => parseDockerConfig(JSON.stringify({ auths: { 'r.example.com': { auth: b64('nocolon') } } })), /not base64/);
    invalid(() => parseDockerConfig(JSON.stringify({ auths: { 'r.example.com': { auth: b64('alice:pw'), username: 'bob' } } })), /"alice" but username says "bob"/);
  });

  it('checks server addresses', () => {
    for (const ok of ['registry.example.com', 'localhost:5000', 'https://index.docker.io/v1/', 'ghcr.io/org', '10.0.0.1:443']) assert.equal(checkServer(ok), ok);
    invalid(() => checkServer(undefined), /needs a server/);
    invalid(() => checkServer('  '), /needs a server/);
    for (const bad of ['https://', 'bad host', 'r.example.com:99999', '-r.example.com', 'r.example.com:port']) invalid(() => checkServer(bad), /not a registry address/);
  });

  it('checks entry names: they become Secret names and label values', () => {
    assert.equal(checkEntryName('ecr-prod'), 'ecr-prod');
    invalid(() => checkEntryName(undefined), /needs a name/);
    for (const bad of ['ECR', 'a_b', '-a', 'a'.repeat(64), 'a.b']) invalid(() => checkEntryName(bad), /not a valid entry name/);
  });

  it('builds what `kubectl create secret docker-registry` builds, and refuses missing parts', () => {
    const config = dockerConfigFor('r.example.com', 'robot', 'p:w');
    assert.deepEqual(config, { auths: { 'r.example.com': { username: 'robot', password: 'p:w', auth: b64('robot:p:w') } } });
    assert.deepEqual(parseDockerConfig(JSON.stringify(config)), config, 'what we write reads back');
    invalid(() => dockerConfigFor('', 'robot', 'pw'), /needs a server/);
    invalid(() => dockerConfigFor('r.example.com', undefined, 'pw'), /needs a username/);
    invalid(() => dockerConfigFor('r.example.com', 'a:b', 'pw'), /must not contain ":"/);
    invalid(() => dockerConfigFor('r.example.com', 'robot', ''), /password is empty/);
  });

  it('drops exactly one trailing newline from a piped password, as docker login does', () => {
    assert.equal(passwordFromStdin('pw\n'), 'pw');
    assert.equal(passwordFromStdin('pw\r\n'), 'pw');
    assert.equal(passwordFromStdin('pw \n\n'), 'pw \n');
    assert.equal(passwordFromStdin('\n'), '');
  });

  it('never lets a password, auth string or token into a summary', () => {
    const config = parseDockerConfig(JSON.stringify({ auths: { 'a.example.com': { auth: b64('robot:hunter2') }, 'b.example.com': { username: 'u', password: 'hunter3' }, 'c.example.com': { identitytoken: 'hunter4' } } }));
    const shown = JSON.stringify(summarize(config));
    for (const secret of ['hunter2', 'hunter3', 'hunter4', b64('robot:hunter2')]) assert.ok(!shown.includes(secret), `${secret} leaked into ${shown}`);
  });
});

describe('imagePullSecrets on service accounts', () => {
  it('keeps what others put there, adds every entry once, and takes back only stale entries meshid added', () => {
    assert.deepEqual(desiredPullSecrets(['own', 'old'], ['old'], ['corp']), ['own', 'corp']);
    assert.deepEqual(desiredPullSecrets(['own', 'corp'], ['corp'], ['corp']), ['own', 'corp'], 'already right: unchanged');
    assert.deepEqual(desiredPullSecrets(['corp'], [], ['corp']), ['corp'], 'no duplicate of a hand-added reference');
    assert.deepEqual(desiredPullSecrets(['own'], ['gone'], []), ['own'], 'a managed name that is not there is no trouble');
  });
});
