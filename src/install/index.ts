export { install, uninstall, type UninstallOptions } from './install.ts';
export { installManifests, SHARED_OBJECTS, SERVICE_ACCOUNT, SERVICE_NAME, HTTP_PORT, HTTPS_PORT, CA_PORT, ADMIN_GROUP, AGENT_SERVICE_ACCOUNT, AGENT_SOCKET_DIR, MESHID_RESOURCES, ROOT_CONFIGMAP_NAME, type InstallOptions } from './manifests.ts';
