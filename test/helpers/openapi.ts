/**
 * Checks HTTP exchanges against an OpenAPI 3.1 document with a real JSON Schema validator (ajv, draft
 * 2020-12, strict): the request (path parameters, query, body, token) and the answer (status, media
 * type, body). An answer whose status the operation does not list, or whose body has a field its schema
 * does not name (the document closes its objects), is a mismatch.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';

/** One request a test made and the answer it got, as sent and received on the wire. */
export interface Exchange {
  method: string;
  /** With the query string. */
  path: string;
  /** The body as sent (a string is sent as is), or undefined for none. */
  body: unknown;
  /** Whether a bearer token was sent. */
  authorized: boolean;
  status: number;
  contentType: string;
  text: string;
}

interface Operation {
  key: string;
  template: string;
  regex: RegExp;
  names: string[];
  op: {
    parameters?: Array<{ name: string; in: 'path' | 'query'; required?: boolean; schema: object }>;
    requestBody?: { required?: boolean; content: Record<string, { schema: object }> };
    responses: Record<string, { content?: Record<string, { schema?: object }> }>;
    security?: unknown[];
  };
}

export class OpenApiChecker {
  readonly operations: Operation[] = [];
  private readonly ajv = new Ajv2020({ strict: true, allErrors: true });
  private readonly compiled = new Map<object, ValidateFunction>();

  constructor(readonly doc: { openapi: string; paths: Record<string, Record<string, Operation['op']>> }) {
    for (const [template, ops] of Object.entries(doc.paths)) {
      const names: string[] = [];
      const regex = new RegExp(
        `^${template.replace(/[.]/g, '\\.').replace(/\{(\w+)\}/g, (_m, n: string) => {
          names.push(n);
          return '([^/]+)';
        })}$`,
      );
      for (const [method, op] of Object.entries(ops))
        this.operations.push({ key: `${method.toUpperCase()} ${template}`, template, regex, names, op });
    }
    // Compile every schema up front: a schema ajv cannot compile (unknown keyword, bad pattern) fails here.
    for (const { op } of this.operations) {
      for (const p of op.parameters ?? []) this.validator(p.schema);
      for (const c of Object.values(op.requestBody?.content ?? {})) this.validator(c.schema);
      for (const r of Object.values(op.responses))
        for (const c of Object.values(r.content ?? {})) if (c.schema) this.validator(c.schema);
    }
  }

  /** The documented operation `method path` (query string ignored) hits, with its path parameters; null if none. */
  find(method: string, path: string): { operation: Operation; params: Record<string, string> } | null {
    const pathname = path.split('?')[0]!;
    for (const o of this.operations) {
      if (!o.key.startsWith(`${method.toUpperCase()} `)) continue;
      const m = o.regex.exec(pathname);
      if (m)
        return { operation: o, params: Object.fromEntries(o.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
    }
    return null;
  }

  /** What is wrong with the request by the document (empty: a valid request). */
  requestProblems(ex: Exchange): string[] {
    const hit = this.find(ex.method, ex.path);
    if (!hit) return [`${ex.method} ${ex.path.split('?')[0]} is not documented`];
    const { op } = hit.operation;
    const problems: string[] = [];
    if (op.security && op.security.length > 0 && !ex.authorized) problems.push('no bearer token');
    const params = op.parameters ?? [];
    for (const p of params.filter((x) => x.in === 'path'))
      problems.push(...this.errors(p.schema, hit.params[p.name], `path parameter ${p.name}`));
    const query = new URLSearchParams(ex.path.includes('?') ? ex.path.slice(ex.path.indexOf('?') + 1) : '');
    for (const name of new Set(query.keys())) {
      const p = params.find((x) => x.in === 'query' && x.name === name);
      if (!p) problems.push(`query parameter ${name} is not documented`);
      else problems.push(...this.errors(p.schema, query.get(name), `query parameter ${name}`));
    }
    for (const p of params.filter((x) => x.in === 'query' && x.required))
      if (!query.has(p.name)) problems.push(`query parameter ${p.name} is missing`);
    const schema = op.requestBody?.content['application/json']?.schema;
    if (ex.body === undefined) {
      if (op.requestBody?.required) problems.push('no body');
    } else if (!schema) {
      problems.push('a body, where none is documented');
    } else {
      let body: unknown;
      try {
        body = typeof ex.body === 'string' ? JSON.parse(ex.body) : ex.body;
      } catch {
        return [...problems, 'the body is not JSON'];
      }
      problems.push(...this.errors(schema, body, 'body'));
    }
    return problems;
  }

  /** What is wrong with the answer by the document (empty: as documented). */
  responseProblems(ex: Exchange): string[] {
    const hit = this.find(ex.method, ex.path);
    const where = `${ex.method} ${ex.path.slice(0, 120)} → ${ex.status}`;
    if (!hit) {
      // Not a documented route: the catch-all answer, in the error shape.
      const body = parse(ex.text) as { error?: { code?: unknown; message?: unknown } } | null;
      return ex.status === 404 && body?.error?.code === 'not_found' && typeof body.error.message === 'string'
        ? []
        : [`${where}: an undocumented route answered other than 404 not_found: ${ex.text.slice(0, 200)}`];
    }
    const response =
      hit.operation.op.responses[String(ex.status)] ?? hit.operation.op.responses[`${String(ex.status)[0]}XX`];
    if (!response)
      return [
        `${where}: status ${ex.status} is not documented for ${hit.operation.key} (documented: ${Object.keys(hit.operation.op.responses).join(', ')})`,
      ];
    const media = ex.contentType.split(';')[0]!.trim();
    const content = response.content?.[media];
    if (!content)
      return [
        `${where}: media type ${media || '(none)'} is not documented (documented: ${Object.keys(response.content ?? {}).join(', ') || 'none'})`,
      ];
    if (!content.schema) return [];
    const body = media.endsWith('json') ? parse(ex.text) : ex.text;
    if (body === undefined) return [`${where}: the body is not JSON: ${ex.text.slice(0, 200)}`];
    return this.errors(content.schema, body, 'answer').map((e) => `${where}: ${e}`);
  }

  private validator(schema: object): ValidateFunction {
    let v = this.compiled.get(schema);
    if (!v) this.compiled.set(schema, (v = this.ajv.compile(schema)));
    return v;
  }

  private errors(schema: object, value: unknown, what: string): string[] {
    const v = this.validator(schema);
    if (v(value)) return [];
    return (v.errors ?? [])
      .slice(0, 5)
      .map(
        (e) =>
          `${what}${e.instancePath}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}${e.params && 'allowedValues' in e.params ? ` (${JSON.stringify(e.params.allowedValues)})` : ''}`,
      );
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
