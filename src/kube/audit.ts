import type { SecurityEvent, SecurityReason } from './events.ts';

/**
 * Where a use case writes the one audit event of what it did: the server's `SecurityEvents`
 * (fire and forget, never failing the act), or the CLI's events written with the operator's
 * own credentials before it exits (awaited, best-effort too).
 */
export interface AuditTrail {
  record(event: SecurityEvent): void | Promise<unknown>;
}

/** Who acted, and through what when it is not the dashboard: "meshid CLI", "POST /tokens/user". */
export interface Actor {
  user: string;
  via?: string;
}

/** Writes a use case's event in the one shape every caller shares. */
export async function audit(trail: AuditTrail, by: Actor, reason: SecurityReason, message: string): Promise<void> {
  await trail.record({ reason, user: by.user, message: by.via ? `${message} (${by.via})` : message });
}
