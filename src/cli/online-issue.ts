import type { Command } from 'commander';
import type { OnlineUserTokenIssuer } from './generate-commands.ts';
import { globalOptions } from './globals.ts';

/**
 * `meshid generate user-token` without a key: the server issues it, as `POST /tokens/user`,
 * after logging in with the kubeconfig (RBAC: create usertokens.meshid.io).
 */
export const issueUserTokenOnline: OnlineUserTokenIssuer = async (request, command: Command) => {
  const { connect } = await import('./connect.ts');
  const { sendWithSession, problemError } = await import('./session.ts');
  const conn = await connect(globalOptions(command));
  const answer = await sendWithSession(conn, 'POST', '/tokens/user', request);
  if (answer.status !== 200 || typeof answer.body !== 'string') throw problemError(answer, 'issuing the user token failed');
  return answer.body.trim();
};
