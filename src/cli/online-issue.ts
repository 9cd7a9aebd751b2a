import type { Command } from 'commander';
import type { OnlineUserTokenIssuer } from './generate-commands.ts';
import { openApiClient } from './api-client.ts';

/**
 * `meshid generate user-token` without a key: the server issues it, as `POST /tokens/user`,
 * for the current control plane's token or the kubeconfig's session (RBAC: create usertokens.meshid.io).
 */
export const issueUserTokenOnline: OnlineUserTokenIssuer = async (request, command: Command) => {
  const { problemError } = await import('./session.ts');
  const api = await openApiClient(command);
  const answer = await api.send('POST', '/tokens/user', request);
  if (answer.status !== 200 || typeof answer.body !== 'string') throw problemError(answer, 'issuing the user token failed');
  return answer.body.trim();
};
