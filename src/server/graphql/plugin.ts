import type { FastifyInstance, FastifyRequest } from 'fastify';
import { mercurius } from 'mercurius';
import { createComplexityRule, simpleEstimator } from 'graphql-query-complexity';
import { GraphQLError, parse } from 'graphql';
import { sendProblem } from '../problem.ts';
import { withinDeadline } from '../deadline.ts';
import { SCHEMA } from './schema.ts';
import { dashboardContext, newPodVisibility, type DashboardContext, type DashboardDeps } from './context.ts';
import { formatErrors } from './errors.ts';
import { meResolvers } from './me.ts';
import { workloadResolvers } from './workloads.ts';
import { caResolvers } from './ca.ts';
import { tokenResolvers } from './tokens.ts';
import { registryResolvers } from './registries.ts';
import { recoveryResolvers } from './recovery.ts';
import { eventResolvers } from './events.ts';

export const GRAPHQL_PATH = '/api/graphql';
/** Deep enough for the dashboard's own queries (4 levels), shallow enough to stop abuse. */
export const MAX_QUERY_DEPTH = 6;
/** One point per field; the dashboard's largest page asks for about 60. */
export const MAX_QUERY_COST = 500;
/** Query text beyond this is refused before parsing. */
export const MAX_QUERY_BYTES = 16 * 1024;
const MAX_QUERY_TOKENS = 2000;

const resolvers = [meResolvers, workloadResolvers, caResolvers, tokenResolvers, registryResolvers, recoveryResolvers, eventResolvers];

type Resolver = (root: unknown, args: never, ctx: DashboardContext) => Promise<unknown>;

/** Every resolver of one kind, each bounded: a resolver may make several Kubernetes calls in a row. */
function merge(kind: 'Query' | 'Mutation'): Record<string, Resolver> {
  const all = Object.assign({}, ...resolvers.map((r) => (r as Partial<Record<typeof kind, Record<string, Resolver>>>)[kind] ?? {})) as Record<string, Resolver>;
  return Object.fromEntries(Object.entries(all).map(([name, resolve]) => [name, (root: unknown, args: never, ctx: DashboardContext) => withinDeadline(resolve(root, args, ctx))]));
}

const invalidQuery = (message: string) => ({ data: null, errors: [{ message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] });

/** Why a query text is not a GraphQL document, or undefined when it is one. */
function unparseable(text: string | undefined): string | undefined {
  if (text === undefined || text.trim() === '') return 'send a GraphQL document in "query"';
  try {
    parse(text, { maxTokens: MAX_QUERY_TOKENS });
    return undefined;
  } catch (error) {
    return error instanceof GraphQLError ? error.message : 'the query is not a GraphQL document';
  }
}

function queryText(request: FastifyRequest): string | undefined {
  const source = request.method === 'GET' ? request.query : request.body;
  const query = (source as { query?: unknown } | null | undefined)?.query;
  return typeof query === 'string' ? query : undefined;
}

/**
 * `/api/graphql`: authenticated like the rest of the API (a 401 or CSRF refusal is a problem
 * document, before GraphQL runs), then every resolver acts as the caller.
 */
export function registerGraphql(app: FastifyInstance, deps: DashboardDeps): void {
  const contexts = new WeakMap<FastifyRequest, DashboardContext>();
  const visibility = newPodVisibility(deps.clock);
  void app.register(async (scope) => {
    scope.addHook('preHandler', async (request, reply) => {
      try {
        const text = queryText(request);
        if (text !== undefined && Buffer.byteLength(text) > MAX_QUERY_BYTES) {
          return await reply.code(413).send(invalidQuery(`the query is longer than ${MAX_QUERY_BYTES} bytes`));
        }
        // Checked here because mercurius reads an unparseable query as a JSON document.
        const problem = unparseable(text);
        if (problem) return await reply.code(400).send(invalidQuery(problem));
        contexts.set(request, dashboardContext(deps, visibility, request.caller()));
      } catch (error) {
        return sendProblem(reply, request, error, deps.log);
      }
    });
    await scope.register(mercurius, {
      schema: SCHEMA,
      resolvers: { Query: merge('Query'), Mutation: merge('Mutation') } as never,
      path: GRAPHQL_PATH,
      graphiql: false,
      // The cost rule needs each request's variables, which mercurius's parse cache cannot give it.
      cache: false,
      queryDepth: MAX_QUERY_DEPTH,
      graphql: { parseOptions: { maxTokens: MAX_QUERY_TOKENS } },
      validationRules: ({ variables }) => [
        createComplexityRule({
          maximumComplexity: MAX_QUERY_COST,
          variables: variables ?? {},
          estimators: [simpleEstimator({ defaultComplexity: 1 })],
          createError: (max, actual) => new GraphQLError(`the query costs ${actual}; the limit is ${max}`),
        }),
      ],
      context: (request) => contexts.get(request) ?? {},
      errorFormatter: (execution, context) => {
        const { statusCode, response, retryAfter } = formatErrors(execution, deps.log);
        if (retryAfter) void context.reply.header('retry-after', '5');
        return { statusCode, response };
      },
    });
  });
}
