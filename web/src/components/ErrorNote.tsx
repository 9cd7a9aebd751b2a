import type { ApiError } from '../api.ts';
import { describePermission, type Permission } from '../permissions.ts';

/** What the user lacks, worded the same everywhere so it can be searched for and granted. */
export function MissingPermission({ permission, id }: { permission: Permission; id?: string }) {
  return (
    <span className="missing-permission" id={id}>
      Missing permission: <code>{describePermission(permission)}</code>
    </span>
  );
}

export function ErrorNote({ error }: { error: ApiError }) {
  if (error.code === 'FORBIDDEN' && error.permission) {
    return (
      <p className="note note-forbidden" role="alert">
        Kubernetes refused this. <MissingPermission permission={error.permission} />
      </p>
    );
  }
  return (
    <p className="note note-error" role="alert">
      {error.message} <span className="error-code">[{error.code}]</span>
    </p>
  );
}
