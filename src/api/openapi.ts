/**
 * The OpenAPI 3 document of the REST API, derived from the route table (TypeBox schemas are JSON Schema).
 */
import { routes } from './routes.ts';

const ErrorBody = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

export function openApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const params = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      for (const [name, schema] of Object.entries((r.query as { properties?: Record<string, unknown> }).properties ?? {})) {
        params.push({ name, in: 'query', required: false, schema: strip(schema) as { type: string } });
      }
    }
    (paths[path] ??= {})[r.method] = {
      summary: r.summary,
      security: [{ bearer: [] }],
      'x-access': r.access,
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: strip(r.body) } } } } : {}),
      responses: {
        [String(r.status ?? 200)]: { description: 'success', content: { 'application/json': { schema: { type: 'object' } } } },
        '4XX': { description: 'error', content: { 'application/json': { schema: ErrorBody } } },
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'teechain-ts REST wallet API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths: {
      '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3 document' } } } },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics of this node (text exposition format; see README "Metrics")',
          security: [{ bearer: [] }],
          'x-access': 'read',
          responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } }, '4XX': { description: 'error', content: { 'application/json': { schema: ErrorBody } } } },
        },
      },
      ...paths,
    },
  };
}

/** TypeBox schemas carry symbol-keyed metadata; JSON.stringify drops it, which is all we need. */
function strip(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema));
}
