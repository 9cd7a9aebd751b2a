import { useEffect } from 'react';
import { Badge } from '../components/Badge.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { GuardedButton } from '../components/GuardedButton.tsx';
import { Panel } from '../components/Panel.tsx';
import { CAP, mayDo } from '../permissions.ts';
import { RECOVER_PLAN, type RecoverPlanResult, type RecoveryPlan } from '../queries.ts';
import { useSession } from '../session.tsx';
import { useMutation } from '../use-graphql.ts';

/**
 * The plan `meshid recover all` would run now. Read-only on purpose: recovery revokes every
 * credential, so it runs from the CLI, which asks before it acts and reports each step.
 */
export function RecoveryPage() {
  const { me } = useSession();
  const allowed = mayDo(me, CAP.planRecovery);
  const [plan, planning] = useMutation<RecoverPlanResult>(RECOVER_PLAN);

  useEffect(() => {
    if (allowed) void plan();
  }, [allowed, plan]);

  return (
    <Panel
      title="Recovery plan"
      description={
        <>
          What <code>meshid recover all</code> would do now, step by step. Nothing here changes anything: run the command to act.
        </>
      }
      actions={
        <GuardedButton capability={CAP.planRecovery} variant="secondary" busy={planning.status === 'running'} onClick={() => void plan()}>
          Refresh plan
        </GuardedButton>
      }
    >
      {planning.status === 'failed' ? <ErrorNote error={planning.error} /> : null}
      {planning.status === 'running' ? <p className="muted">Building the plan…</p> : null}
      {planning.status === 'done' ? <Plan plan={planning.data.recoverPlan} /> : null}
    </Panel>
  );
}

function Plan({ plan }: { plan: RecoveryPlan }) {
  return (
    <>
      <dl className="facts">
        <dt>meshid namespace</dt>
        <dd>
          <code>{plan.meshidNamespace}</code>
        </dd>
        <dt>Mesh namespaces</dt>
        <dd>{plan.meshNamespaces.length > 0 ? plan.meshNamespaces.join(', ') : '(none)'}</dd>
      </dl>
      <ol className="steps">
        {plan.steps.map((step) => (
          <li key={step.step} className="step">
            <div className="step-head">
              <h3>
                <code>{step.step}</code> {step.description}
              </h3>
              {step.blocked ? <Badge tone="bad">blocked</Badge> : step.actions.length > 0 ? <Badge tone="info">{step.actions.length === 1 ? '1 action' : `${step.actions.length} actions`}</Badge> : <Badge tone="neutral">nothing to do</Badge>}
            </div>
            <p>{step.summary}</p>
            {step.blocked ? <p className="note note-forbidden">{step.blocked}</p> : null}
            {step.actions.length > 0 ? (
              <details className="details">
                <summary>Actions</summary>
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">Action</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Namespace</th>
                      <th scope="col">Name</th>
                      <th scope="col">Detail</th>
                    </tr>
                  </thead>
                  <tbody>
                    {step.actions.map((a, i) => (
                      <tr key={`${a.kind}/${a.namespace ?? ''}/${a.name}/${i}`}>
                        <td>{a.action}</td>
                        <td>{a.kind}</td>
                        <td>{a.namespace ?? '—'}</td>
                        <td>{a.name}</td>
                        <td>{a.detail ?? ''}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </details>
            ) : null}
          </li>
        ))}
      </ol>
    </>
  );
}
