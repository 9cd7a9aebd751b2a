/** Who a request is, as Kubernetes will see it through impersonation. */
export interface Identity {
  name: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/** What the user may do, from SubjectAccessReview, keyed `<resource>[.<group>]/<verb>`. */
export type Capabilities = Record<string, boolean>;

export interface Session {
  user: Identity;
  capabilities: Capabilities;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  jti: string;
}
