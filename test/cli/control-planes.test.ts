import assert from 'node:assert/strict';
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMeshidError } from '../../src/core/index.ts';
import {
  addControlPlane,
  controlPlaneFromFlags,
  listControlPlanes,
  readControlPlanes,
  removeControlPlane,
  useControlPlane,
  writeControlPlanes,
  type ControlPlane,
} from '../../src/cli/control-planes.ts';

const cp = (name: string): ControlPlane => ({ name, address: `https://${name}.example:5682`, authType: 'tokens', authConf: { token: `secret-${name}` } });
const file = async (): Promise<string> => join(await mkdtemp(join(tmpdir(), 'meshid-cp-unit-')), 'nested', 'config.yaml');

describe('control-plane store', () => {
  it('adds (making current), switches and removes; removing the current one leaves none current', () => {
    let config = addControlPlane({ controlPlanes: [] }, cp('a'));
    config = addControlPlane(config, cp('b'));
    assert.equal(config.currentControlPlane, 'b');
    config = useControlPlane(config, 'a');
    assert.equal(config.currentControlPlane, 'a');
    config = removeControlPlane(config, 'a');
    assert.equal(config.currentControlPlane, undefined);
    assert.deepEqual(config.controlPlanes.map((c) => c.name), ['b']);
  });

  it('refuses a duplicate name without --overwrite, and unknown names with ERR_NOT_FOUND', () => {
    const config = addControlPlane({ controlPlanes: [] }, cp('a'));
    assert.throws(() => addControlPlane(config, cp('a')), (e) => isMeshidError(e, 'ERR_INVALID_ARGUMENT'));
    assert.equal(addControlPlane(config, { ...cp('a'), address: 'http://other:5681' }, { overwrite: true }).controlPlanes[0]?.address, 'http://other:5681');
    assert.throws(() => useControlPlane(config, 'zz'), (e) => isMeshidError(e, 'ERR_NOT_FOUND'));
    assert.throws(() => removeControlPlane(config, 'zz'), (e) => isMeshidError(e, 'ERR_NOT_FOUND'));
  });

  it('writes an owner-only file that reads back the same; a missing file is empty', async () => {
    const path = await file();
    assert.deepEqual(await readControlPlanes(path), { controlPlanes: [] });
    const config = addControlPlane({ controlPlanes: [] }, cp('a'));
    await writeControlPlanes(config, path);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readControlPlanes(path), config);
  });

  it('names the bad field of a hand-edited file without echoing the token', async () => {
    const path = await file();
    await writeControlPlanes({ controlPlanes: [cp('a')] }, path);
    await writeFile(path, 'currentControlPlane: a\ncontrolPlanes:\n- name: a\n  address: ftp://x\n  authType: tokens\n  authConf: {token: hunter2}\n');
    await assert.rejects(readControlPlanes(path), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && /controlPlanes\[0\]\.address/.test(String(e)) && !String(e).includes('hunter2'));
  });

  it('never lists a token', () => {
    const views = listControlPlanes(addControlPlane({ controlPlanes: [] }, cp('a')));
    assert.ok(!JSON.stringify(views).includes('secret-a'));
    assert.equal(views[0]?.current, true);
  });
});

describe('control-planes add flags', () => {
  const base = { name: 'p', address: 'https://h:5682', authType: 'tokens', authConf: ['token=t'] };
  const refused = async (input: Parameters<typeof controlPlaneFromFlags>[0], flag: RegExp) =>
    assert.rejects(controlPlaneFromFlags(input), (e: unknown) => isMeshidError(e, 'ERR_INVALID_ARGUMENT') && flag.test(String(e)));

  it('accepts a complete set', async () => {
    assert.deepEqual(await controlPlaneFromFlags({ ...base, skipVerify: true }), { name: 'p', address: 'https://h:5682', authType: 'tokens', authConf: { token: 't' }, skipVerify: true });
  });
  it('names the flag that is wrong', async () => {
    await refused({ ...base, name: undefined }, /--name/);
    await refused({ ...base, address: 'h:5682' }, /--address/);
    await refused({ ...base, authType: 'basic' }, /--auth-type/);
    await refused({ ...base, authConf: ['tok=t'] }, /--auth-conf key "tok"/);
    await refused({ ...base, authConf: [] }, /token=TOKEN is required/);
    await refused({ ...base, skipVerify: true, caCertFile: '/x' }, /cannot be used together/);
    await refused({ ...base, clientCertFile: '/x' }, /go together/);
    await refused({ ...base, address: 'http://h:5681', skipVerify: true }, /need an https/);
    await refused({ ...base, caCertFile: '/nonexistent/ca.pem' }, /cannot read/);
  });
});
