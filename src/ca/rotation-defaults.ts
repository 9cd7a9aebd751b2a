/**
 * The timings of `meshid ca rotate` and the dashboard's rotation when the operator names
 * none, defined once for both. This file imports nothing, so the CLI may show them in its
 * help without loading the CA (its bundle takes each name from the file that defines it).
 */

/** How long a new root sits in the trust bundle before it signs, so every agent trusts it first. */
export const DEFAULT_PROPAGATION_MS = 30_000;
/** How long the old root stays trusted after the new one signs (or a plugged-in CA replaces it), while leaves are re-issued. */
export const DEFAULT_GRACE_MS = 60 * 60_000;
