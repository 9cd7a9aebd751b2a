export { execCredential } from './exec-credential.ts';
