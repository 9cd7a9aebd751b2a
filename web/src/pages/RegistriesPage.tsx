import { useState, type FormEvent } from 'react';
import { ConfirmAction } from '../components/ConfirmAction.tsx';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { Field } from '../components/Field.tsx';
import { GuardedButton } from '../components/GuardedButton.tsx';
import { Panel } from '../components/Panel.tsx';
import { QueryView } from '../components/QueryView.tsx';
import { CAP, mayDo, missingPermission } from '../permissions.ts';
import { REGISTRIES, REGISTRY_ADD, REGISTRY_REMOVE, type RegistriesResult, type RegistryAddResult, type RegistryRemoveResult } from '../queries.ts';
import { useSession } from '../session.tsx';
import { formatTime } from '../time.ts';
import { useMutation, useQuery } from '../use-graphql.ts';

export function RegistriesPage() {
  const { me } = useSession();
  const registries = useQuery<RegistriesResult>(REGISTRIES, {}, mayDo(me, CAP.listRegistries));
  const [remove, removing] = useMutation<RegistryRemoveResult>(REGISTRY_REMOVE);
  return (
    <div className="stack">
      <Panel title="Registry credentials" description="dockerconfigjson Secrets in namespace meshid-registry-access; passwords are never shown.">
        {removing.status === 'failed' ? <ErrorNote error={removing.error} /> : null}
        <QueryView state={registries} missing={missingPermission(me, CAP.listRegistries)}>
          {({ registries: list }) =>
            list.length === 0 ? (
              <p className="muted">No registry credentials are stored.</p>
            ) : (
              <table className="table" aria-label="Registries">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Servers (user)</th>
                    <th scope="col">Updated</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((r) => (
                    <tr key={r.name}>
                      <td>{r.name}</td>
                      <td>
                        {r.error ? <span className="note-error">{r.error}</span> : null}
                        <ul className="plain">
                          {r.servers.map((s) => (
                            <li key={s.server}>
                              <code>{s.server}</code> ({s.username})
                            </li>
                          ))}
                        </ul>
                      </td>
                      <td className="nowrap">{formatTime(r.updatedAt)}</td>
                      <td>
                        <ConfirmAction
                          capability={CAP.removeRegistry}
                          label={`Remove ${r.name}`}
                          busy={removing.status === 'running'}
                          consequence={`Deletes the credentials of ${r.name}; pods that pull with them fail on their next pull.`}
                          onConfirm={() => void remove({ name: r.name }).then((done) => done && registries.reload())}
                        />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </QueryView>
      </Panel>
      <AddRegistry onAdded={registries.reload} />
    </div>
  );
}

function AddRegistry({ onAdded }: { onAdded: () => void }) {
  const [name, setName] = useState('');
  const [server, setServer] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [email, setEmail] = useState('');
  const [add, adding] = useMutation<RegistryAddResult>(REGISTRY_ADD);
  const submit = (event: FormEvent): void => {
    event.preventDefault();
    void add({ name: name.trim(), server: server.trim(), username, password, ...(email.trim() ? { email: email.trim() } : {}) }).then((done) => {
      if (!done) return;
      setPassword('');
      onAdded();
    });
  };
  return (
    <Panel title="Add registry credentials" description="Stored as a dockerconfigjson Secret; meshid re-keys these during recovery.">
      <form className="form form-grid" onSubmit={submit}>
        <Field name="registry-name" label="Name" value={name} onChange={setName} required />
        <Field name="registry-server" label="Server" value={server} onChange={setServer} required placeholder="registry.example.com" />
        <Field name="registry-username" label="Username" value={username} onChange={setUsername} required />
        <Field name="registry-password" label="Password" type="password" value={password} onChange={setPassword} required />
        <Field name="registry-email" label="Email" type="email" value={email} onChange={setEmail} />
        <div className="button-row">
          <GuardedButton capability={CAP.addRegistry} type="submit" busy={adding.status === 'running'}>
            Add registry
          </GuardedButton>
        </div>
      </form>
      {adding.status === 'failed' ? <ErrorNote error={adding.error} /> : null}
      {adding.status === 'done' ? (
        <p className="note note-ok" role="status">
          Stored credentials <code>{adding.data.registryAdd.name}</code>.
        </p>
      ) : null}
    </Panel>
  );
}
