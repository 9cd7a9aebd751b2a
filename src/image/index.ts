export { buildImage, mib, EXPOSED_PORTS, type BuildImageOptions, type BuiltImage, type LayerInfo } from './build.ts';
export { NODE_RUNTIME } from './node-runtime.ts';
export { IMAGE_UID, IMAGE_USER, NODE_PATH } from './rootfs.ts';
export { untar, type TarFile } from './tar.ts';
export { MEDIA_TYPES, writeOciArchive, jsonBlob, sha256, type Blob, type OciArchive } from './oci.ts';
export { buildPauseImage, PAUSE_IMAGE } from './pause.ts';
