/**
 * The OpenAPI 3.1 document of the REST API, derived from the route table (TypeBox schemas are JSON
 * Schema, the dialect of OpenAPI 3.1). Every answer is described: the success answer's schema, with
 * every object in it closed (additionalProperties: false) unless the route says otherwise, and one entry
 * per error status the route may answer (a read route's own list, else every status of the error table,
 * src/node/errors.ts), whose code is one of the error table's codes of that status.
 */
import { HTTP_STATUS, type ErrorCode } from '../node/errors.ts';
import { routes } from './routes.ts';

/** `not_primary`'s pointer to the committee's current primary (src/node/errors.ts PrimaryHint). */
const PRIMARY_HINT = {
  type: 'object',
  description: 'not_primary only: the current primary of the committee (its REST URL is a hint, not attested)',
  required: ['node_id', 'rest_url'],
  additionalProperties: false,
  properties: {
    node_id: { type: 'string', pattern: '^[0-9a-f]{66}$' },
    rest_url: { type: ['string', 'null'] },
  },
};

/** The error answer of one HTTP status: its code is one of the error table's codes with that status. */
function errorBody(codes: string[]) {
  return {
    type: 'object',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: { type: 'string', enum: codes },
          message: { type: 'string' },
          ...(codes.includes('not_primary') ? { primary: PRIMARY_HINT } : {}),
        },
      },
    },
  };
}

/** The error statuses every route may answer: bad input, no or a wrong token, an internal or enclave failure, the node stopping. */
const EVERY_ROUTE = [400, 401, 500, 503];

/** status → error answer, for every status of the error table. */
function errorResponses(): Record<string, unknown> {
  const byStatus = new Map<number, string[]>();
  for (const [code, status] of Object.entries(HTTP_STATUS) as Array<[ErrorCode, number]>)
    (byStatus.get(status) ?? byStatus.set(status, []).get(status)!).push(code);
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, codes]) => [
        String(status),
        {
          description: `error: ${codes.sort().join(', ')}`,
          content: { 'application/json': { schema: errorBody(codes) } },
        },
      ]),
  );
}

export function openApiDocument() {
  const errors = errorResponses();
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (r.query) {
      for (const [name, schema] of Object.entries(
        (r.query as { properties?: Record<string, unknown> }).properties ?? {},
      )) {
        params.push({ name, in: 'query', required: false, schema: strip(schema) as { type: string } });
      }
    }
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      security: [{ bearer: [] }],
      'x-access': r.access,
      ...(params.length ? { parameters: params } : {}),
      ...(r.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: strip(r.body) } } } }
        : {}),
      responses: {
        [String(r.status ?? 200)]: {
          description: 'success',
          content: { 'application/json': { schema: closed(strip(r.response)) } },
        },
        ...(r.errors ? pick(errors, [...EVERY_ROUTE, ...r.errors]) : errors),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'teechain-ts REST wallet API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/v1/openapi.json': {
        get: {
          summary: 'This document (no token needed)',
          responses: {
            200: {
              description: 'OpenAPI 3.1 document',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['openapi', 'info', 'paths'],
                    properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } },
                  },
                },
              },
            },
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics of this node (text exposition format; see docs/operations.md)',
          security: [{ bearer: [] }],
          'x-access': 'read',
          responses: {
            200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...pick(errors, [401, 404, 500]),
          },
        },
      },
      ...paths,
    },
  };
}

/** The entries of `responses` for these statuses. */
function pick(responses: Record<string, unknown>, statuses: number[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(responses).filter(([status]) => statuses.includes(Number(status))));
}

/** TypeBox schemas carry symbol-keyed metadata; JSON.stringify drops it, which is all we need. */
function strip(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema));
}

/** Every object schema in `schema` (a plain JSON copy) without an additionalProperties of its own gets `false`. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema))
    out[k] =
      k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, s]) => [p, closed(s)])) : closed(v);
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined)
    out.additionalProperties = false;
  return out;
}
