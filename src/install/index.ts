export { install, uninstall, type UninstallOptions } from './install.ts';
export { installManifests, SHARED_OBJECTS, SERVICE_ACCOUNT, SERVICE_NAME, HTTP_PORT, HTTPS_PORT, AGENT_SERVICE_ACCOUNT, AGENT_SOCKET_DIR, MESH_PROXY_GID, type InstallOptions } from './manifests.ts';
// Install names the trust-bundle ConfigMap in its RBAC; the name itself is the contract's.
export { ROOT_CONFIGMAP as ROOT_CONFIGMAP_NAME } from '../contract/index.ts';
