import { readFileSync } from 'node:fs';

/** What meshid calls itself to other tools, e.g. the `product` of the Kuma index kumactl reads. */
export const PRODUCT = 'meshid';

/**
 * package.json's version, the one source for `meshid --version` and for what the server says
 * it is. Read from the file rather than inlined so a version bump needs no rebuild to be true;
 * the path holds from src/core under tsx, dist/core and the CLI bundle in dist/bin alike.
 */
export const MESHID_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
