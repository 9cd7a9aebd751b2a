export { buildImage, mib, MEDIA_TYPES, EXPOSED_PORTS, type BuildImageOptions, type BuiltImage, type LayerInfo } from './build.ts';
export { NODE_RUNTIME } from './node-runtime.ts';
export { IMAGE_UID, IMAGE_USER, NODE_PATH } from './rootfs.ts';
export { untar, type TarFile } from './tar.ts';
