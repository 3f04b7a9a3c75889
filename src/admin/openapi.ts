/**
 * The OpenAPI 3.1 document of the admin API, built from the operation table of `api.ts`
 * and the zod schemas the API validates with (`z.toJSONSchema`, JSON Schema 2020-12 as
 * OpenAPI 3.1 uses it), so what is documented is what is enforced.
 */
import { z } from 'zod';

import type { Operation } from './api.ts';
import { problemSchema } from './api-schemas.ts';
import { PROBLEM_TYPE } from './problems.ts';

type JsonSchema = Record<string, unknown>;

const problemDescriptions: Record<number, string> = {
  400: 'Bad input: malformed JSON, wrong property types, unknown properties (see `errors`).',
  401: 'No usable credentials (`WWW-Authenticate: Bearer`).',
  403: 'Not an admin, a token without the `admin` scope, or a missing CSRF token.',
  404: 'No such tenant or account among those the caller manages.',
  405: 'Method not allowed on this path.',
  409: 'Refused by a rule: the last local admin, a retired account, a taken username.',
  413: 'The body is too large.',
  415: 'The body is not `application/json`, or compressed.',
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Koa's `/accounts/:accountId` as OpenAPI's `/accounts/{accountId}`. */
export const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

function parameters(op: Operation): JsonSchema[] {
  const inPath = [...op.path.matchAll(/:(\w+)/g)].map(([, name]) => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  if (!op.query) return inPath;
  const query = jsonSchema(op.query, 'input') as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  const inQuery = Object.entries(query.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: 'query',
      required: query.required?.includes(name) ?? false,
      ...(description === undefined ? {} : { description }),
      schema: rest,
    };
  });
  return [...inPath, ...inQuery];
}

function responses(op: Operation): Record<string, unknown> {
  const { success } = op;
  const result: Record<string, unknown> = {
    [success.status]: {
      description: success.description,
      ...(success.status === 204
        ? {}
        : { content: { 'application/json': { schema: success.name ? ref(success.name) : {} } } }),
    },
  };
  const statuses = new Set(op.problems);
  if (!op.public) [400, 401, 403].forEach((status) => statuses.add(status));
  if (op.body) [413, 415].forEach((status) => statuses.add(status));
  for (const status of [...statuses].sort()) {
    result[status] = {
      description: problemDescriptions[status] ?? 'Refused.',
      content: { [PROBLEM_TYPE]: { schema: ref('Problem') } },
    };
  }
  return result;
}

/** The document for `operations`. */
export function openApiDocument(operations: Operation[]): JsonSchema {
  const schemas: Record<string, JsonSchema> = { Problem: jsonSchema(problemSchema, 'output') };
  const paths: Record<string, Record<string, unknown>> = {};

  for (const op of operations) {
    if (op.body) schemas[op.body.name] = jsonSchema(op.body.schema, 'input');
    if (op.success.name && op.success.schema)
      schemas[op.success.name] = jsonSchema(op.success.schema, 'output');
    (paths[openApiPath(op.path)] ??= {})[op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.public ? { security: [] } : {}),
      parameters: parameters(op),
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: ref(op.body.name) } },
            },
          }
        : {}),
      responses: responses(op),
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'flueag-idp admin API',
      version: '1',
      description:
        'Every action of the account admin pages, authorised by the same rules: a local admin manages the accounts of their own tenant, an operator those of every tenant (marked as such in the audit trail). Ids of accounts and tenants the caller does not manage answer 404. Errors are RFC 9457 problem documents.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { consoleSession: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An opaque access token of this provider with the scope `admin`, issued to a local admin or operator (authorization code flow without `resource`).',
        },
        consoleSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'flueag.console',
          description:
            'The session of the account console; POST, PUT and DELETE also need the CSRF token of the console pages in the header `X-CSRF-Token`.',
        },
      },
    },
  };
}
