/**
 * A user token as issued online, the answer of the dashboard's `generateUserToken`: the
 * server's use case returns it and the dashboard reads it. This module imports nothing, so
 * the dashboard (web/, built by Vite) imports it by path.
 */
export interface IssuedUserToken {
  /** The token's `jti`: what revocation takes. */
  id: string;
  token: string;
  name: string;
  groups: string[];
  expiresAt: string;
}
