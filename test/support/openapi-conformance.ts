/**
 * Checks one HTTP exchange against the OpenAPI document the app serves
 * (`openApiDocument`): the status is declared for the operation (or, for a
 * method the path does not serve, is one every operation declares), declared
 * headers are present and well-formed, the media type is a declared one, and
 * a JSON or NDJSON body validates against the declared schema with Ajv
 * (JSON Schema 2020-12, which OpenAPI 3.1 uses). A path outside the document
 * may only answer `404 ROUTE_NOT_FOUND` or what every operation declares.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { DEFAULT_LIMITS, openApiDocument } from '@hearsay/http';

export interface Exchange {
  readonly method: string;
  /** Absolute URL or path (query included). */
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  /** The body as text; undefined when it was not read (a stream), '' when empty. */
  readonly body: string | undefined;
}

interface MediaType {
  readonly schema?: unknown;
}
interface HeaderObject {
  readonly required?: boolean;
  readonly schema?: unknown;
  readonly $ref?: string;
}
interface ResponseObject {
  readonly headers?: Readonly<Record<string, HeaderObject>>;
  readonly content?: Readonly<Record<string, MediaType>>;
}
interface OperationObject {
  readonly responses: Readonly<Record<string, ResponseObject>>;
}
type PathItem = Readonly<Record<string, OperationObject>>;

const DOCUMENT = openApiDocument(DEFAULT_LIMITS) as {
  paths: Readonly<Record<string, PathItem>>;
  components: { headers: Readonly<Record<string, HeaderObject>> };
};
const DOCUMENT_ID = 'https://hearsay.test/openapi.json';

type AjvConstructor = new (options: object) => {
  addSchema(schema: object, key?: string): unknown;
  compile(schema: object): ValidateFunction;
};
// ajv is CommonJS; its 2020-12 build is the default export of this entry.
const Ajv2020 = (createRequire(import.meta.url)('ajv/dist/2020.js') as { default: AjvConstructor }).default;
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ ...DOCUMENT, $id: DOCUMENT_ID });

const validators = new Map<string, ValidateFunction>();
/** A validator for the schema at `pointer` (a JSON pointer into the document). */
function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (validate === undefined) {
    validate = ajv.compile({ $ref: `${DOCUMENT_ID}#${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

const headerValidators = new Map<string, ValidateFunction>();
function headerValidator(schema: object): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = headerValidators.get(key);
  if (validate === undefined) {
    validate = ajv.compile(schema);
    headerValidators.set(key, validate);
  }
  return validate;
}

const escapePointer = (part: string): string => part.replaceAll('~', '~0').replaceAll('/', '~1');

/** The path template the app routes a URL path to, or undefined outside the document. */
export function templateOf(pathname: string): string | undefined {
  // Hono routes on the path with percent-escapes decoded, except %2F (and %25).
  const routed = pathname.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const code = Number.parseInt(hex, 16);
    return code === 0x2f || code === 0x25 || code >= 0x80 ? escape : String.fromCharCode(code);
  });
  if (routed.startsWith('/v1/kv/')) return '/v1/kv/{key}';
  // Hono's :node is one non-empty segment.
  if (/^\/v1\/admin\/remove\/[^/]+$/.test(routed)) return '/v1/admin/remove/{node}';
  return Object.hasOwn(DOCUMENT.paths, routed) ? routed : undefined;
}

/** Status → error codes that every operation declares (the server's own answers). */
export const EVERY_OPERATION: ReadonlyMap<number, ReadonlySet<string>> = (() => {
  let common: Map<number, Set<string>> | undefined;
  for (const item of Object.values(DOCUMENT.paths)) {
    // HEAD answers carry no bodies, so their error responses name no codes.
    for (const [method, operation] of Object.entries(item)) {
      if (method === 'head') continue;
      const here = new Map<number, Set<string>>();
      for (const [status, response] of Object.entries(operation.responses)) {
        const codes = codesOf(response);
        if (codes !== undefined) here.set(Number(status), new Set(codes));
      }
      if (common === undefined) common = here;
      else {
        for (const [status, codes] of common) {
          const other = here.get(status);
          if (other === undefined) common.delete(status);
          else for (const code of codes) if (!other.has(code)) codes.delete(code);
        }
      }
    }
  }
  return common ?? new Map();
})();

/** The error codes an error response declares (from its `allOf` code enum). */
function codesOf(response: ResponseObject): readonly string[] | undefined {
  const schema = response.content?.['application/json']?.schema as { allOf?: { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } }[] } | undefined;
  return schema?.allOf?.[1]?.properties?.error?.properties?.code?.enum;
}

function mediaTypeOf(headers: Headers): string | undefined {
  return headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
}

function describeErrors(errors: readonly ErrorObject[] | null | undefined): string {
  return (errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${e.params === undefined ? '' : ` ${JSON.stringify(e.params)}`}`).join('; ');
}

/** What is wrong with the exchange; empty when it conforms. */
export function conformanceProblems(exchange: Exchange): string[] {
  const url = new URL(exchange.url, 'http://hearsay.test');
  const what = `${exchange.method} ${url.pathname}${url.search} → ${exchange.status}`;
  if (url.pathname.startsWith('/internal/')) return [];
  const template = templateOf(url.pathname);
  const method = exchange.method === exchange.method.toUpperCase() ? exchange.method.toLowerCase() : undefined;
  const item = template === undefined ? undefined : DOCUMENT.paths[template];
  const operation = item !== undefined && method !== undefined ? item[method] : undefined;

  let pointer: string;
  let response: ResponseObject | undefined;
  if (operation !== undefined) {
    response = operation.responses[String(exchange.status)];
    if (response === undefined) return [`${what}: status ${exchange.status} is not declared for ${exchange.method} ${template}`];
    pointer = `/paths/${escapePointer(template!)}/${method}/responses/${exchange.status}`;
  } else {
    // A method the path does not serve, or a path outside the document: only what every operation declares, and 404 ROUTE_NOT_FOUND.
    const allowed = new Set(EVERY_OPERATION.get(exchange.status) ?? []);
    if (template === undefined && exchange.status === 404) allowed.add('ROUTE_NOT_FOUND');
    if (allowed.size === 0) return [`${what}: ${template === undefined ? 'a path outside the document' : `a method ${template} does not serve`} answered a status no operation declares for it`];
    if (exchange.method === 'HEAD' || exchange.body === undefined) return [];
    let code: unknown;
    try {
      code = (JSON.parse(exchange.body) as { error?: { code?: unknown } }).error?.code;
    } catch {
      return [`${what}: the error body is not JSON: ${exchange.body.slice(0, 200)}`];
    }
    if (typeof code !== 'string' || !allowed.has(code)) return [`${what}: error code ${String(code)} is not one of ${[...allowed].join(', ')}`];
    const validate = validatorAt('/components/schemas/Error');
    return validate(JSON.parse(exchange.body)) ? [] : [`${what}: ${describeErrors(validate.errors)}`];
  }

  const problems: string[] = [];
  for (const [name, declared] of Object.entries(response.headers ?? {})) {
    const header = declared.$ref === undefined ? declared : DOCUMENT.components.headers[declared.$ref.split('/').at(-1)!];
    const value = exchange.headers.get(name);
    if (value === null) {
      if (header?.required === true) problems.push(`${what}: header ${name} is missing`);
      continue;
    }
    if (header?.schema !== undefined) {
      const validate = headerValidator(header.schema as object);
      if (!validate(value)) problems.push(`${what}: header ${name}: ${JSON.stringify(value)} ${describeErrors(validate.errors)}`);
    }
  }

  const content = response.content;
  const body = exchange.method === 'HEAD' ? '' : exchange.body;
  if (content === undefined) {
    if (body !== undefined && body.length > 0) problems.push(`${what}: a body where the document declares none`);
    return problems;
  }
  if (exchange.method === 'HEAD') return problems;
  const mediaType = mediaTypeOf(exchange.headers);
  const declaredType = Object.keys(content).find((type) => type === '*/*' || type === mediaType);
  if (declaredType === undefined) {
    problems.push(`${what}: Content-Type ${mediaType ?? '(none)'} is not one of ${Object.keys(content).join(', ')}`);
    return problems;
  }
  if (body === undefined || declaredType === '*/*' || content[declaredType]?.schema === undefined) return problems;
  const validate = validatorAt(`${pointer}/content/${escapePointer(declaredType)}/schema`);
  const values: unknown[] = [];
  try {
    if (declaredType === 'application/json') {
      values.push(JSON.parse(body));
    } else if (declaredType === 'application/x-ndjson') {
      for (const line of body.split('\n')) if (line.length > 0) values.push(JSON.parse(line));
    } else {
      values.push(body);
    }
  } catch {
    problems.push(`${what}: the ${declaredType} body does not parse: ${body.slice(0, 200)}`);
    return problems;
  }
  for (const value of values) {
    if (!validate(value)) problems.push(`${what}: ${JSON.stringify(value).slice(0, 300)}: ${describeErrors(validate.errors)}`);
  }
  return problems;
}
