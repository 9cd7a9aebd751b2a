// `npm run image`: builds meshid:<version> as an OCI image archive from this checkout, with no
// container engine. `--output FILE` puts the archive elsewhere than the cache.
import { parseArgs } from 'node:util';
import { terminalProgress } from '../src/core/index.ts';
import { buildImage, mib } from '../src/image/index.ts';

const { values } = parseArgs({ options: { output: { type: 'string', short: 'o' } } });
try {
  const image = await buildImage({ progress: terminalProgress(), ...(values.output ? { output: values.output } : {}) });
  for (const layer of image.layers) {
    console.log(`layer ${layer.name.padEnd(12)} ${layer.digest}  ${mib(layer.size)} (${mib(layer.uncompressedSize)} unpacked)`);
  }
  console.log(`image    ${image.name}`);
  console.log(`archive  ${image.archive}`);
  console.log(`digest   ${image.manifestDigest}`);
  console.log(`size     ${mib(image.archiveSize)}`);
  console.log(`import   ctr -n k8s.io images import ${image.archive}   or   docker load -i ${image.archive}`);
} catch (error) {
  const e = error as { code?: string; message: string; hint?: string };
  console.error(`error: ${e.message}${e.code ? ` [${e.code}]` : ''}${e.hint ? `\nhint: ${e.hint}` : ''}`);
  process.exitCode = 1;
}
