import { createContext, useContext } from 'react';
import type { Me } from './queries.ts';

export interface SessionValue {
  me: Me;
  /** The server no longer knows the session: back to the login window. */
  lost: () => void;
}

export const SessionContext = createContext<SessionValue | undefined>(undefined);

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession() outside the signed-in shell');
  return value;
}
