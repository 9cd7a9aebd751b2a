import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, answerError, graphql, isUnauthenticated } from './api.ts';
import { useSession } from './session.tsx';

export type QueryState<T> =
  | { status: 'skipped' }
  | { status: 'loading'; data?: T | undefined }
  | { status: 'done'; data: T }
  | { status: 'failed'; error: ApiError };

const asApiError = (error: unknown): ApiError => (error instanceof ApiError ? error : new ApiError('CLIENT', error instanceof Error ? error.message : String(error)));

/**
 * Runs a query when the page shows (and again on reload or when its variables change).
 * `enabled: false` skips it: a page does not ask for what the capabilities already refuse.
 */
export function useQuery<T>(query: string, variables: Record<string, unknown> = {}, enabled = true): QueryState<T> & { reload: () => void } {
  const { lost } = useSession();
  const [state, setState] = useState<QueryState<T>>(enabled ? { status: 'loading' } : { status: 'skipped' });
  const [round, setRound] = useState(0);
  const key = JSON.stringify(variables);

  useEffect(() => {
    if (!enabled) {
      setState({ status: 'skipped' });
      return;
    }
    let current = true;
    // Keep the last answer on screen while the next one loads: no flicker on reload.
    setState((previous) => ({ status: 'loading', data: previous.status === 'done' || previous.status === 'loading' ? previous.data : undefined }));
    graphql<T>(query, JSON.parse(key) as Record<string, unknown>)
      .then(({ data, errors }) => {
        if (!current) return;
        const error = answerError(errors);
        setState(data && !error ? { status: 'done', data } : { status: 'failed', error: error ?? new ApiError('GRAPHQL', 'the server sent no data') });
      })
      .catch((error: unknown) => {
        if (!current) return;
        if (isUnauthenticated(error)) lost();
        else setState({ status: 'failed', error: asApiError(error) });
      });
    return () => {
      current = false;
    };
  }, [query, key, enabled, round, lost]);

  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { ...state, reload };
}

export type MutationState<T> = { status: 'idle' } | { status: 'running' } | { status: 'done'; data: T } | { status: 'failed'; error: ApiError };

/** A mutation run on demand; `run` resolves to the answer, or undefined after a failure it reports in state. */
export function useMutation<T>(mutation: string): [(variables?: Record<string, unknown>) => Promise<T | undefined>, MutationState<T>, () => void] {
  const { lost } = useSession();
  const [state, setState] = useState<MutationState<T>>({ status: 'idle' });
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const run = useCallback(
    async (variables: Record<string, unknown> = {}): Promise<T | undefined> => {
      setState({ status: 'running' });
      try {
        const { data, errors } = await graphql<T>(mutation, variables);
        const error = answerError(errors);
        if (!data || error) throw error ?? new ApiError('GRAPHQL', 'the server sent no data');
        if (mounted.current) setState({ status: 'done', data });
        return data;
      } catch (error) {
        if (isUnauthenticated(error)) lost();
        else if (mounted.current) setState({ status: 'failed', error: asApiError(error) });
        return undefined;
      }
    },
    [mutation, lost],
  );
  const reset = useCallback(() => setState({ status: 'idle' }), []);
  return [run, state, reset];
}
