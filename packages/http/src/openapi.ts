/**
 * The OpenAPI 3.1 document of the public HTTP API v1, served at
 * `/v1/openapi.json`. Written by hand from the routes of app.ts, and held to
 * them: every response the test suite gets from a node is validated against
 * it (test/support/openapi-conformance.ts), and test/openapi.test.ts makes
 * the server send every status and error code declared here.
 *
 * Each operation declares exactly the error codes it can answer, by status;
 * the ones of the server around the app (a node still starting, the HTTP
 * parser, the request listener, a bug) are declared on every operation.
 */
import type { HttpErrorCode } from './errors.ts';

interface Limits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly defaultListLimit: number;
  readonly maxListLimit: number;
}

type Codes = readonly HttpErrorCode[];
/** Error codes an operation answers, by status. */
type ErrorsByStatus = Readonly<Record<number, Codes>>;

/** What a query string can be refused with on a route that takes parameters. */
const QUERY: Codes = ['UNKNOWN_PARAMETER', 'INVALID_PARAMETER', 'INVALID_PERCENT_ENCODING', 'INVALID_UTF8'];
/** ... and on a route that takes none (the first name is unknown, or does not decode). */
const NO_QUERY: Codes = ['UNKNOWN_PARAMETER', 'INVALID_PERCENT_ENCODING', 'INVALID_UTF8'];
const KEY: Codes = ['KEY_EMPTY', 'KEY_TOO_LONG', 'INVALID_PERCENT_ENCODING', 'INVALID_UTF8'];
/** A read the replicas could not answer (or a store that is closed). */
const READ_UNAVAILABLE: Codes = ['INSUFFICIENT_REPLICAS', 'TIMEOUT', 'UNAVAILABLE'];
/**
 * ... and a write, which a full write queue can also refuse, and a node that
 * will not stamp it because of clocks (fenced, its clock ahead, or the key
 * holding a version too far ahead).
 */
const WRITE_UNAVAILABLE: Codes = [...READ_UNAVAILABLE, 'BUSY', 'CLOCK_SKEW'];

/**
 * Answers any route can give whatever the request: from the server around
 * the app (bytes the HTTP parser refuses, a URL the request listener cannot
 * read, a slow or oversized request head, every connection slot busy, a node
 * that is still starting) and a bug. 405 is the answer to a method the path
 * does not serve (and to CONNECT on any path).
 */
const EVERY_OPERATION: ErrorsByStatus = {
  400: ['MALFORMED_REQUEST'],
  405: ['METHOD_NOT_ALLOWED'],
  408: ['REQUEST_TIMEOUT'],
  431: ['HEADERS_TOO_LARGE'],
  500: ['INTERNAL'],
  503: ['BUSY', 'NOT_SERVING'],
};

const DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is malformed (URL, key, query parameter, header or the HTTP itself)',
  404: 'Nothing under this key',
  405: 'The path does not serve this method; Allow lists the ones it does',
  408: 'The request did not arrive in time (answered by the server, then the connection closes)',
  409: 'Another such operation is already running, or concurrent writes to the key kept superseding this one (retry)',
  412: 'A precondition did not hold',
  413: 'The value is over the limit; refused without reading the body (a body that keeps coming past a bound closes the connection)',
  415: 'Unusable Content-Type or Content-Encoding',
  431: 'The request head is larger than the server accepts (then the connection closes)',
  500: 'A bug: the node logged it; bad input never causes this',
  503: 'The node cannot serve this now (starting, not enough replicas, too busy, fenced for its clock); Retry-After says when to try again',
};

const ALLOW = { Allow: { $ref: '#/components/headers/Allow' } };

function union(...lists: Codes[]): HttpErrorCode[] {
  return [...new Set(lists.flat())].sort();
}

/** The error responses of an operation: its own codes and those of every operation, by status. */
function errorResponses(own: ErrorsByStatus): Record<string, unknown> {
  const statuses = [...new Set([...Object.keys(own), ...Object.keys(EVERY_OPERATION)].map(Number))].sort((a, b) => a - b);
  const responses: Record<string, unknown> = {};
  for (const status of statuses) {
    const codes = union(own[status] ?? [], EVERY_OPERATION[status] ?? []);
    responses[status] = {
      description: `${DESCRIPTIONS[status] ?? 'Error'}: ${codes.join(', ')}`,
      ...(status === 405 ? { headers: ALLOW } : {}),
      ...(status === 401 || status === 403 ? { headers: { 'WWW-Authenticate': { required: true, description: 'Bearer realm="hearsay", with the error', schema: { type: 'string', pattern: '^Bearer ' } } } } : {}),
      ...(status === 503 ? { headers: { 'Retry-After': { required: true, description: 'Seconds to wait before trying again', schema: { type: 'string', pattern: '^[0-9]+$' } } } } : {}),
      content: {
        'application/json': {
          schema: {
            allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } }],
          },
        },
      },
    };
  }
  return responses;
}

interface OperationSpec {
  readonly summary: string;
  /** Answered without a token also on a node with an auth file (health, this document, OPTIONS). */
  readonly open?: boolean;
  readonly parameters?: readonly unknown[];
  readonly requestBody?: unknown;
  /** Success and other non-error answers, by status. */
  readonly answers: Readonly<Record<number, unknown>>;
  readonly errors: ErrorsByStatus;
}

/** What a node with an auth file answers a request without the token it needs (access.ts): decided before anything else. */
const TOKEN_ERRORS: ErrorsByStatus = { 401: ['UNAUTHENTICATED'], 403: ['FORBIDDEN'] };

function operation(spec: OperationSpec): Record<string, unknown> {
  const errors = spec.open === true ? spec.errors : { ...spec.errors, ...TOKEN_ERRORS };
  return {
    summary: spec.summary,
    ...(spec.open === true ? { security: [] } : {}),
    ...(spec.parameters === undefined ? {} : { parameters: spec.parameters }),
    ...(spec.requestBody === undefined ? {} : { requestBody: spec.requestBody }),
    responses: { ...spec.answers, ...errorResponses(errors) },
  };
}

/** HEAD as GET without bodies: the same statuses and headers. */
function headOf(get: OperationSpec): Record<string, unknown> {
  const answers: Record<number, unknown> = {};
  for (const [status, answer] of Object.entries(get.answers)) {
    const { content: _content, ...rest } = answer as { content?: unknown };
    answers[Number(status)] = rest;
  }
  const head = operation({ ...get, summary: `${get.summary}, without the body`, answers });
  for (const answer of Object.values(head['responses'] as Record<string, { content?: unknown }>)) delete answer.content;
  return head;
}

/** OPTIONS on a path: 204 with Allow, without a token. */
function optionsOf(allow: string): Record<string, unknown> {
  return operation({
    summary: `The methods of this path (${allow})`,
    open: true,
    answers: { 204: { description: `Allow: ${allow}`, headers: ALLOW } },
    errors: {},
  });
}

const json = (ref: string): unknown => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });

export function openApiDocument(limits: Limits): Record<string, unknown> {
  const consistency = { $ref: '#/components/parameters/consistency' };
  const key = { $ref: '#/components/parameters/key' };
  const etag = { ETag: { $ref: '#/components/headers/ETag' } };

  const getValue: OperationSpec = {
    summary: 'Read a value',
    parameters: [
      key,
      consistency,
      { name: 'If-None-Match', in: 'header', schema: { type: 'string' }, description: '`*` or a list of ETags; a match answers 304' },
      { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: '`*` or one ETag; otherwise 412' },
    ],
    answers: {
      200: {
        description: 'The value bytes, with the Content-Type it was written with (application/octet-stream by default)',
        headers: { ...etag, 'Content-Type': { required: true, schema: { type: 'string' } } },
        content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
      },
      304: { description: 'If-None-Match matched the current ETag', headers: etag },
    },
    errors: { 400: union(KEY, QUERY, ['INVALID_HEADER']), 404: ['NOT_FOUND'], 412: ['PRECONDITION_FAILED'], 503: READ_UNAVAILABLE },
  };
  const listKeys: OperationSpec = {
    summary: 'List keys, sorted',
    parameters: [
      { name: 'prefix', in: 'query', schema: { type: 'string' }, description: `At most ${limits.maxKeyBytes} bytes` },
      { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.maxListLimit, default: limits.defaultListLimit } },
      { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'The `next` of the previous page' },
      consistency,
    ],
    answers: { 200: { description: 'A page of keys', content: json('ListPage') } },
    errors: { 400: union(QUERY, ['INVALID_CURSOR']), 503: READ_UNAVAILABLE },
  };
  const cluster: OperationSpec = {
    summary: 'Members as this node sees them',
    answers: { 200: { description: 'Membership', content: json('Cluster') } },
    errors: { 400: NO_QUERY },
  };
  const health: OperationSpec = {
    summary: 'Whether the node serves',
    open: true,
    answers: { 200: { description: 'Serving', content: json('Health') } },
    errors: { 400: NO_QUERY },
  };
  const document: OperationSpec = {
    summary: 'This document',
    open: true,
    answers: {
      200: {
        description: 'OpenAPI 3.1',
        content: { 'application/json': { schema: { type: 'object', required: ['openapi', 'info', 'paths'], properties: { openapi: { const: '3.1.0' } } } } },
      },
    },
    errors: { 400: NO_QUERY },
  };
  const metrics: OperationSpec = {
    summary: 'Prometheus metrics',
    answers: { 200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } } },
    errors: { 400: NO_QUERY },
  };

  return {
    openapi: '3.1.0',
    info: {
      title: 'Hearsay HTTP API',
      version: '1',
      description:
        'An eventually consistent key-value store. Any node accepts reads and writes. Errors are JSON `{ "error": { "code": "UPPER_SNAKE", "message": "..." } }`; ' +
        'each operation lists the codes it can answer under each status. A path outside this document is `404 ROUTE_NOT_FOUND`. Every route refuses a query ' +
        'parameter it does not take (`400 UNKNOWN_PARAMETER`). ' +
        'A node started with an auth file needs `Authorization: Bearer <token>` on every route but /v1/health, /v1/openapi.json and OPTIONS: ' +
        'scope read for GET/HEAD of keys, listing and /v1/cluster, write for PUT/DELETE, metrics for /metrics, admin for everything.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/kv/{key}': {
        get: operation(getValue),
        head: headOf(getValue),
        put: operation({
          summary: 'Write a value',
          parameters: [
            key,
            consistency,
            { name: 'Content-Type', in: 'header', schema: { type: 'string' }, description: 'Stored and returned by GET' },
            { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'Write only over this ETag (or any value for `*`)' },
            { name: 'If-None-Match', in: 'header', schema: { type: 'string', const: '*' }, description: 'Create only' },
          ],
          requestBody: {
            required: false,
            description: `The value bytes, at most ${limits.maxValueBytes} bytes`,
            content: { '*/*': { schema: { type: 'string', format: 'binary', maxLength: limits.maxValueBytes } } },
          },
          answers: { 204: { description: 'Written', headers: etag } },
          errors: {
            // INCOMPLETE_BODY: the body broke off (over HTTP the client has usually gone by then).
            400: union(KEY, QUERY, ['INVALID_HEADER', 'INCOMPLETE_BODY']),
            409: ['CONFLICT'],
            412: ['PRECONDITION_FAILED'],
            413: ['VALUE_TOO_LARGE'],
            415: ['UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_CONTENT_ENCODING'],
            503: WRITE_UNAVAILABLE,
          },
        }),
        delete: operation({
          summary: 'Delete a value (writes a tombstone; 204 also when the key is missing)',
          parameters: [key, consistency, { name: 'If-Match', in: 'header', schema: { type: 'string' } }],
          answers: { 204: { description: 'Deleted' } },
          errors: { 400: union(KEY, QUERY, ['INVALID_HEADER']), 409: ['CONFLICT'], 412: ['PRECONDITION_FAILED'], 503: WRITE_UNAVAILABLE },
        }),
        options: optionsOf('GET, HEAD, PUT, DELETE, OPTIONS'),
      },
      '/v1/kv': { get: operation(listKeys), head: headOf(listKeys), options: optionsOf('GET, HEAD, OPTIONS') },
      '/v1/cluster': { get: operation(cluster), head: headOf(cluster), options: optionsOf('GET, HEAD, OPTIONS') },
      '/v1/repair': {
        post: operation({
          summary: 'Run anti-entropy repair now; streams progress',
          answers: {
            200: {
              description:
                'One JSON object per line: a `progress` line per partition, the last line a `summary` (or an `error` line if the repair failed midway, or ended without a summary)',
              headers: { 'Cache-Control': { schema: { const: 'no-store' } } },
              content: { 'application/x-ndjson': { schema: { $ref: '#/components/schemas/RepairLine' } } },
            },
          },
          errors: { 400: NO_QUERY, 409: ['CONFLICT'] },
        }),
        options: optionsOf('POST, OPTIONS'),
      },
      '/v1/admin/decommission': {
        post: operation({
          summary: 'Decommission this node: stream each of its partitions to its next owner, then leave (docs/topology.md)',
          parameters: [{ name: 'abort', in: 'query', schema: { type: 'string', enum: ['true', 'false'] }, description: '`true` takes back a decommission in progress' }],
          answers: { 202: { description: 'The change is recorded; /v1/cluster shows its progress', content: json('Topology') } },
          errors: {
            400: QUERY,
            404: ['ROUTE_NOT_FOUND'],
            409: ['BELOW_REPLICATION_FACTOR', 'CONFLICT'],
            503: ['UNAVAILABLE'],
          },
        }),
        options: optionsOf('POST, OPTIONS'),
      },
      '/v1/admin/remove/{node}': {
        post: operation({
          summary: 'Remove a member that is down for good: its partitions are copied to new owners from the other replicas',
          parameters: [{ name: 'node', in: 'path', required: true, schema: { type: 'string' }, description: 'The member id, 1 to 128 characters' }],
          answers: { 202: { description: 'The removal is recorded; /v1/cluster shows its progress', content: json('Topology') } },
          errors: {
            400: union(NO_QUERY, ['INVALID_PARAMETER']),
            404: ['ROUTE_NOT_FOUND', 'UNKNOWN_MEMBER'],
            409: ['CONFLICT', 'MEMBER_ALIVE'],
            503: ['UNAVAILABLE'],
          },
        }),
        options: optionsOf('POST, OPTIONS'),
      },
      '/v1/health': { get: operation(health), head: headOf(health), options: optionsOf('GET, HEAD, OPTIONS') },
      '/v1/openapi.json': { get: operation(document), head: headOf(document), options: optionsOf('GET, HEAD, OPTIONS') },
      '/metrics': { get: operation(metrics), head: headOf(metrics), options: optionsOf('GET, HEAD, OPTIONS') },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: "A token of the node's auth file (`hearsay token create`); needed only when the node has one" },
      },
      parameters: {
        key: {
          name: 'key',
          in: 'path',
          required: true,
          description: `The rest of the path, percent-decoded UTF-8, 1 to ${limits.maxKeyBytes} bytes; "/" is allowed inside`,
          schema: { type: 'string' },
        },
        consistency: {
          name: 'consistency',
          in: 'query',
          schema: { type: 'string', enum: ['one', 'quorum', 'all'], default: 'quorum' },
        },
      },
      headers: {
        ETag: { description: 'Quoted opaque version of the record', required: true, schema: { type: 'string', pattern: '^"[^"]+"$' } },
        Allow: { description: 'The methods of the path', required: true, schema: { type: 'string' } },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          additionalProperties: false,
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              additionalProperties: false,
              properties: {
                code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]*$' },
                message: { type: 'string' },
                acknowledged: { type: 'integer', minimum: 0, description: 'INSUFFICIENT_REPLICAS, TIMEOUT: replicas that acknowledged' },
                required: { type: 'integer', minimum: 1, description: 'INSUFFICIENT_REPLICAS, TIMEOUT: replicas the consistency level needs' },
                draining: { const: true, description: 'NOT_SERVING from /v1/health of a node shutting down' },
                shedding: { const: true, description: 'NOT_SERVING from /v1/health of a node that refused work for load in the last seconds' },
                owners: { type: 'integer', minimum: 0, description: 'BELOW_REPLICATION_FACTOR: owners that would remain' },
                replicationFactor: { type: 'integer', minimum: 1, description: 'BELOW_REPLICATION_FACTOR: the replication factor' },
                offsetMs: { type: 'integer', description: 'CLOCK_SKEW: how far this node\'s clock (or the version refused) is from the members it reaches (ms; positive: ahead)' },
                errorMs: { type: 'integer', minimum: 0, description: 'CLOCK_SKEW: the error bound of offsetMs' },
                maxOffsetMs: { type: 'integer', minimum: 1, description: 'CLOCK_SKEW, UNAVAILABLE: the maximum clock offset (--max-clock-offset-ms)' },
                clockState: { type: 'string', enum: ['unverified', 'skewed', 'ahead'], description: 'CLOCK_SKEW, UNAVAILABLE, NOT_SERVING: why the node stamps no writes' },
                stampsResumeAtMs: { type: 'integer', description: 'CLOCK_SKEW, NOT_SERVING (clockState ahead): when its clock stamps again (epoch ms)' },
                clockOffsetMs: { type: 'integer', description: 'NOT_SERVING of a node fenced for clock skew: its offset (ms)' },
                maxClockOffsetMs: { type: 'integer', minimum: 1, description: 'NOT_SERVING of a node fenced for its clock: the maximum offset' },
              },
            },
          },
        },
        ListPage: {
          type: 'object',
          required: ['items', 'next'],
          additionalProperties: false,
          properties: {
            items: {
              type: 'array',
              items: {
                type: 'object',
                required: ['key', 'etag', 'size'],
                additionalProperties: false,
                properties: { key: { type: 'string' }, etag: { type: 'string', pattern: '^"[^"]+"$' }, size: { type: 'integer', minimum: 0 } },
              },
            },
            next: { type: ['string', 'null'] },
          },
        },
        Cluster: {
          type: 'object',
          required: ['self', 'members'],
          additionalProperties: false,
          properties: {
            self: { type: 'string' },
            members: { type: 'array', items: { $ref: '#/components/schemas/Member' } },
            topology: { $ref: '#/components/schemas/Topology' },
          },
        },
        Member: {
          type: 'object',
          required: ['id', 'state', 'http', 'gossip', 'incarnation'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            state: {
              type: 'string',
              enum: ['alive', 'suspect', 'dead', 'left', 'joining', 'leaving'],
              description: "gossip's liveness, or joining / leaving while a live member takes over or hands off partitions (docs/topology.md)",
            },
            ring: {
              type: 'string',
              enum: ['joining', 'normal', 'leaving', 'left', 'removing', 'removed'],
              description: "Its status in the ownership table (cluster, with membership changes)",
            },
            http: { type: 'string', description: "Base URL of the member's HTTP API; '' when unknown" },
            gossip: { type: 'string', description: "host:port of its gossip endpoint; '' when it has none" },
            incarnation: { type: 'integer', minimum: 0 },
            keys: { type: 'integer', minimum: 0, description: 'Live keys the member last reported (cluster)' },
            status: { type: 'string', description: 'What the member says of itself: starting, serving, stopping (cluster)' },
            partitions: { type: 'array', items: { type: 'integer', minimum: 0 }, description: 'Partitions it replicates in this node\'s partition map (cluster)' },
            clockOffsetMs: { type: 'integer', description: 'Its clock minus this node\'s as gossip measured it (ms; positive: ahead); absent until measured (cluster)' },
            clockErrorMs: { type: 'integer', minimum: 0, description: 'The error bound of clockOffsetMs (cluster)' },
            clock: { $ref: '#/components/schemas/ClockVerdict' },
          },
        },
        ClockVerdict: {
          type: 'object',
          description: 'On the answering node\'s own member entry and in its health: its verdict on its own clock (cluster). Writes are coordinated only when ok.',
          required: ['state', 'maxOffsetMs', 'reachable', 'within', 'beyond', 'measuring'],
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: ['ok', 'unverified', 'skewed', 'ahead'] },
            maxOffsetMs: { type: 'integer', minimum: 1 },
            reachable: { type: 'integer', minimum: 0, description: 'Other members reachable' },
            within: { type: 'integer', minimum: 0, description: 'Of which measured within the maximum offset' },
            beyond: { type: 'integer', minimum: 0, description: 'Of which measured beyond it' },
            measuring: { type: 'boolean', description: 'Whether offsets are measured at all' },
            offsetMs: { type: 'integer', description: 'skewed: this node\'s clock against the members it is beyond (median; positive: ahead)' },
            errorMs: { type: 'integer', minimum: 0 },
            stampsResumeAtMs: { type: 'integer', description: 'ahead: when its clock stamps again (epoch ms)' },
            reason: { type: 'string' },
          },
        },
        Health: {
          type: 'object',
          required: ['ok', 'status', 'security'],
          additionalProperties: false,
          properties: {
            ok: { const: true },
            status: { const: 'ok' },
            node: { type: 'string', description: 'single node: its id' },
            mode: { const: 'single-node' },
            keys: { type: 'integer', minimum: 0, description: 'single node: live keys' },
            tombstones: { type: 'integer', minimum: 0, description: 'single node: tombstones' },
            members: { type: 'integer', minimum: 1, description: 'cluster: members this node sees' },
            reachable: { type: 'integer', minimum: 1, description: 'cluster: of which reachable, itself included' },
            replicationFactor: { type: 'integer', minimum: 1, description: 'cluster: replicas per key now' },
            hints: { type: 'integer', minimum: 0, description: 'cluster: hints this node keeps for others' },
            clock: { $ref: '#/components/schemas/ClockVerdict' },
            security: {
              type: 'object',
              description: 'How the node is protected (docs/security.md)',
              required: ['clientAuth'],
              additionalProperties: false,
              properties: {
                clientAuth: { type: 'string', enum: ['tokens', 'none'] },
                tls: { type: 'boolean' },
                internode: { type: 'string', enum: ['cluster-key', 'closed', 'insecure'] },
              },
            },
            warnings: { type: 'array', items: { type: 'string' }, description: 'What is open: no auth file, --insecure' },
          },
        },
        Topology: {
          type: 'object',
          description: 'The ownership table and the membership change in progress (docs/topology.md)',
          required: ['epoch', 'ring', 'queued', 'change', 'transfers'],
          additionalProperties: false,
          properties: {
            epoch: { type: 'string', description: 'Identifies the placement requests use now' },
            ring: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'status', 'version'],
                additionalProperties: false,
                properties: {
                  id: { type: 'string' },
                  status: { type: 'string', enum: ['joining', 'normal', 'leaving', 'left', 'removing', 'removed'] },
                  version: { type: 'integer', minimum: 0 },
                },
              },
            },
            queued: {
              type: 'array',
              description: 'Changes waiting for the active one to commit (one change at a time)',
              items: {
                type: 'object',
                required: ['kind', 'member'],
                additionalProperties: false,
                properties: { kind: { type: 'string', enum: ['join', 'decommission', 'remove'] }, member: { type: 'string' } },
              },
            },
            replacing: {
              type: 'object',
              description: 'This node took over a dead member with --replace: partitions filled of those it must fill before it serves',
              required: ['member', 'done', 'total'],
              additionalProperties: false,
              properties: { member: { type: 'string' }, done: { type: 'integer', minimum: 0 }, total: { type: 'integer', minimum: 0 } },
            },
            change: {
              oneOf: [
                { type: 'null' },
                {
                  type: 'object',
                  required: ['kind', 'member', 'key', 'waitingFor', 'done', 'total'],
                  additionalProperties: false,
                  properties: {
                    kind: { type: 'string', enum: ['join', 'decommission', 'remove'] },
                    member: { type: 'string' },
                    key: { type: 'string' },
                    waitingFor: { type: 'array', items: { type: 'string' }, description: 'Members that have not acknowledged the placement yet (the gate)' },
                    done: { type: 'integer', minimum: 0, description: 'Transfers done' },
                    total: { type: 'integer', minimum: 0, description: 'Transfers of the change' },
                  },
                },
              ],
            },
            transfers: {
              type: 'array',
              items: {
                type: 'object',
                required: ['partition', 'to', 'from', 'state'],
                additionalProperties: false,
                properties: {
                  partition: { type: 'integer', minimum: 0 },
                  to: { type: 'string' },
                  from: { type: 'array', items: { type: 'string' } },
                  state: { type: 'string', enum: ['waiting', 'streaming', 'done'] },
                },
              },
            },
          },
        },
        RepairLine: {
          oneOf: [
            { $ref: '#/components/schemas/RepairProgress' },
            { $ref: '#/components/schemas/RepairSummary' },
            { $ref: '#/components/schemas/RepairError' },
          ],
        },
        RepairProgress: {
          type: 'object',
          required: ['type', 'done', 'total'],
          additionalProperties: false,
          properties: {
            type: { const: 'progress' },
            done: { type: 'integer', minimum: 0 },
            total: { type: 'integer', minimum: 0, description: 'May grow while the repair runs' },
            partition: { type: 'integer', minimum: 0, description: 'cluster: the partition just repaired' },
            keysSent: { type: 'integer', minimum: 0 },
            keysReceived: { type: 'integer', minimum: 0 },
            failed: { type: 'integer', minimum: 0, description: 'cluster: replicas of the partition it could not repair with' },
          },
        },
        RepairSummary: {
          type: 'object',
          required: ['type', 'inSync', 'rangesCompared', 'keysSent', 'keysReceived', 'bytesSent', 'bytesReceived', 'durationMs'],
          additionalProperties: false,
          properties: {
            type: { const: 'summary' },
            inSync: { type: 'boolean', description: 'Every replica the repair covered is in sync' },
            rangesCompared: { type: 'integer', minimum: 0 },
            keysSent: { type: 'integer', minimum: 0 },
            keysReceived: { type: 'integer', minimum: 0 },
            bytesSent: { type: 'integer', minimum: 0 },
            bytesReceived: { type: 'integer', minimum: 0 },
            durationMs: { type: 'number', minimum: 0 },
            message: { type: 'string' },
            partitions: { type: 'integer', minimum: 0, description: 'cluster: partitions this node replicates' },
            tombstonesPurged: { type: 'integer', minimum: 0 },
            foreignPartitions: { type: 'integer', minimum: 0, description: 'cluster: partitions it held data for without replicating them' },
            foreignKeysSent: { type: 'integer', minimum: 0 },
          },
        },
        RepairError: {
          type: 'object',
          required: ['type', 'error'],
          additionalProperties: false,
          properties: {
            type: { const: 'error' },
            error: {
              type: 'object',
              required: ['code', 'message'],
              additionalProperties: false,
              properties: { code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]*$' }, message: { type: 'string' } },
            },
          },
        },
      },
    },
  };
}
