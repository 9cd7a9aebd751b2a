import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { MESHID_VERSION, PRODUCT } from '../core/index.ts';

/**
 * Kuma's API-server index, what kuma-cp answers at `GET /`. kumactl reads it before
 * `config control-planes add` saves a control plane, and before most commands to check that
 * it fits the server (docs/adr/0007-kuma-index.md).
 */
export interface KumaIndex {
  hostname: string;
  product: string;
  version: string;
  instanceId: string;
  clusterId: string;
  gui: string;
}

/**
 * The build-metadata tag on meshid's version in the index. kumactl waives its product and
 * version checks for a version containing "preview", Kuma's word for a build outside its
 * release line; meshid speaks a part of Kuma's API (the index and `/tokens/user`) and is no
 * Kuma release, so that is what it is to kumactl.
 */
export const KUMA_API_PREVIEW = 'kuma-api-preview';

/** This process among the replicas: the pod's name (its hostname) and a per-start suffix, as Kuma's instance ids are. */
const INSTANCE_ID = `${hostname()}-${randomBytes(2).toString('hex')}`;

/**
 * The index for a dashboard at `gui`. `basedOnKuma` is left out: Kuma sets it for its own
 * distributions, and meshid is not one. `clusterId` is empty: Kuma's is a UUID it keeps in its
 * store, meshid keeps no record of its own, and kumactl does not read it.
 */
export function kumaIndex(gui: string): KumaIndex {
  return {
    hostname: hostname(),
    product: PRODUCT,
    version: `${MESHID_VERSION}+${KUMA_API_PREVIEW}`,
    instanceId: INSTANCE_ID,
    clusterId: '',
    gui,
  };
}
