export { CA_SERVICE_NAME, caServiceDefinition, caClientConstructor, type CertificateRequestMessage, type CertificateResponseMessage } from './proto.ts';
