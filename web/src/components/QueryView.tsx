import type { ReactNode } from 'react';
import type { Permission } from '../permissions.ts';
import type { QueryState } from '../use-graphql.ts';
import { ErrorNote, MissingPermission } from './ErrorNote.tsx';

/** The four states of a query, drawn the same way on every page. */
export function QueryView<T>({ state, missing, children }: { state: QueryState<T>; missing?: Permission | undefined; children: (data: T) => ReactNode }) {
  if (state.status === 'skipped') {
    return <p className="note note-forbidden">{missing ? <MissingPermission permission={missing} /> : 'Not loaded.'}</p>;
  }
  if (state.status === 'failed') return <ErrorNote error={state.error} />;
  if (state.status === 'loading') {
    return state.data !== undefined ? <div className="reloading">{children(state.data)}</div> : <p className="note muted" aria-live="polite">Loading…</p>;
  }
  return <>{children(state.data)}</>;
}
