/**
 * The OpenAPI 3.1 document of the public HTTP API v1, served at
 * `/v1/openapi.json`. Hand-written to match app.ts; the route tests check
 * that every route and error code of the app appears here.
 */
import { HTTP_ERROR_STATUS } from './errors.ts';

interface Limits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly defaultListLimit: number;
  readonly maxListLimit: number;
}

const errorRef = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

export function openApiDocument(limits: Limits): Record<string, unknown> {
  const codesByStatus = new Map<number, string[]>();
  for (const [code, status] of Object.entries(HTTP_ERROR_STATUS)) {
    codesByStatus.set(status, [...(codesByStatus.get(status) ?? []), code]);
  }
  const codes = (status: number): string => (codesByStatus.get(status) ?? []).join(', ');

  const consistency = { $ref: '#/components/parameters/consistency' };
  const key = { $ref: '#/components/parameters/key' };
  const etagHeader = { ETag: { $ref: '#/components/headers/ETag' } };
  const badRequest = errorRef(`Bad key, parameter or header: ${codes(400)}`);
  const methodNotAllowed = errorRef('METHOD_NOT_ALLOWED; the Allow header lists the methods of the route');
  const unavailable = errorRef(`Not enough replicas answered, or the node cannot serve: ${codes(503)}. INSUFFICIENT_REPLICAS carries acknowledged and required.`);

  const getValue = {
    summary: 'Read a value',
    parameters: [
      key,
      consistency,
      { name: 'If-None-Match', in: 'header', schema: { type: 'string' }, description: '`*` or a list of ETags; a match answers 304' },
      { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: '`*` or one ETag; otherwise 412' },
    ],
    responses: {
      200: {
        description: 'The value bytes, with the Content-Type it was written with (application/octet-stream by default)',
        headers: { ...etagHeader, 'Content-Type': { schema: { type: 'string' } } },
        content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
      },
      304: { description: 'If-None-Match matched the current ETag', headers: etagHeader },
      400: badRequest,
      404: errorRef('NOT_FOUND: missing, deleted or expired'),
      405: methodNotAllowed,
      412: errorRef('PRECONDITION_FAILED: If-Match did not hold'),
      503: unavailable,
    },
  };

  const document = {
    openapi: '3.1.0',
    info: {
      title: 'Hearsay HTTP API',
      version: '1',
      description:
        'An eventually consistent key-value store. Any node accepts reads and writes. Errors are JSON `{ "error": { "code": "UPPER_SNAKE", "message": "..." } }`. ' +
        'A node started with an auth file needs `Authorization: Bearer <token>` on every route but /v1/health and /v1/openapi.json: ' +
        'scope read for GET/HEAD of keys, listing and /v1/cluster, write for PUT/DELETE, metrics for /metrics, admin for everything.',
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/kv/{key}': {
        get: getValue,
        head: { ...getValue, summary: 'As GET, without the body' },
        put: {
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
          responses: {
            204: { description: 'Written', headers: etagHeader },
            400: badRequest,
            405: methodNotAllowed,
            412: errorRef('PRECONDITION_FAILED: If-Match or If-None-Match did not hold'),
            413: errorRef('VALUE_TOO_LARGE: refused without reading the whole body'),
            415: errorRef(`Unusable Content-Type or Content-Encoding: ${codes(415)}`),
            503: unavailable,
          },
        },
        delete: {
          summary: 'Delete a value (writes a tombstone; 204 also when the key is missing)',
          parameters: [key, consistency, { name: 'If-Match', in: 'header', schema: { type: 'string' } }],
          responses: {
            204: { description: 'Deleted' },
            400: badRequest,
            405: methodNotAllowed,
            412: errorRef('PRECONDITION_FAILED'),
            503: unavailable,
          },
        },
      },
      '/v1/kv': {
        get: {
          summary: 'List keys, sorted',
          parameters: [
            { name: 'prefix', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: limits.maxListLimit, default: limits.defaultListLimit } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'The `next` of the previous page' },
            consistency,
          ],
          responses: {
            200: { description: 'A page of keys', content: { 'application/json': { schema: { $ref: '#/components/schemas/ListPage' } } } },
            400: badRequest,
            405: methodNotAllowed,
            503: unavailable,
          },
        },
      },
      '/v1/cluster': {
        get: {
          summary: 'Members as this node sees them',
          responses: { 200: { description: 'Membership', content: { 'application/json': { schema: { $ref: '#/components/schemas/Cluster' } } } }, 405: methodNotAllowed },
        },
      },
      '/v1/repair': {
        post: {
          summary: 'Run anti-entropy repair now; streams progress',
          responses: {
            200: {
              description: 'One JSON object per line: `{"type":"progress",...}` lines, the last line `{"type":"summary",...}` (or `{"type":"error",...}` if it failed midway)',
              content: { 'application/x-ndjson': { schema: { $ref: '#/components/schemas/RepairLine' } } },
            },
            405: methodNotAllowed,
            409: errorRef('CONFLICT: a repair is already running'),
            503: unavailable,
          },
        },
      },
      '/v1/admin/decommission': {
        post: {
          summary: 'Decommission this node: stream each of its partitions to its next owner, then leave (docs/topology.md)',
          parameters: [{ name: 'abort', in: 'query', schema: { type: 'string', enum: ['true', 'false'] }, description: '`true` takes back a decommission in progress' }],
          responses: {
            202: { description: 'The change is recorded; /v1/cluster shows its progress', content: { 'application/json': { schema: { $ref: '#/components/schemas/Topology' } } } },
            400: badRequest,
            404: errorRef('ROUTE_NOT_FOUND: not a cluster node'),
            405: methodNotAllowed,
            409: errorRef('BELOW_REPLICATION_FACTOR: fewer owners than the replication factor would remain; CONFLICT: not leaving (abort)'),
            503: unavailable,
          },
        },
      },
      '/v1/admin/remove/{node}': {
        post: {
          summary: 'Remove a member that is down for good: its partitions are copied to new owners from the other replicas',
          parameters: [{ name: 'node', in: 'path', required: true, schema: { type: 'string' } }],
          responses: {
            202: { description: 'The removal is recorded; /v1/cluster shows its progress', content: { 'application/json': { schema: { $ref: '#/components/schemas/Topology' } } } },
            400: badRequest,
            404: errorRef('UNKNOWN_MEMBER: no such member; ROUTE_NOT_FOUND: not a cluster node'),
            405: methodNotAllowed,
            409: errorRef('MEMBER_ALIVE: the member is alive or suspect; CONFLICT: already gone, or this node'),
            503: unavailable,
          },
        },
      },
      '/v1/health': {
        get: {
          summary: 'Whether the node serves',
          responses: {
            200: {
              description: 'Serving',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      status: { const: 'ok' },
                      security: {
                        type: 'object',
                        description: 'How the node is protected (docs/security.md)',
                        properties: {
                          clientAuth: { type: 'string', enum: ['tokens', 'none'] },
                          tls: { type: 'boolean' },
                          internode: { type: 'string', enum: ['cluster-key', 'closed', 'insecure'] },
                        },
                      },
                      warnings: { type: 'array', items: { type: 'string' }, description: 'What is open: no auth file, --insecure' },
                    },
                  },
                },
              },
            },
            503: errorRef('NOT_SERVING: draining (shutting down) or unable to serve'),
          },
        },
      },
      '/v1/openapi.json': { get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': {} } } } } },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A token of the node\'s auth file (`hearsay token create`); needed only when the node has one' },
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
        ETag: { description: 'Quoted opaque version of the record', schema: { type: 'string' } },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { type: 'string', enum: Object.keys(HTTP_ERROR_STATUS) },
                message: { type: 'string' },
                acknowledged: { type: 'integer' },
                required: { type: 'integer' },
              },
            },
          },
        },
        ListPage: {
          type: 'object',
          required: ['items', 'next'],
          properties: {
            items: {
              type: 'array',
              items: {
                type: 'object',
                required: ['key', 'etag', 'size'],
                properties: { key: { type: 'string' }, etag: { type: 'string' }, size: { type: 'integer' } },
              },
            },
            next: { type: ['string', 'null'] },
          },
        },
        Cluster: {
          type: 'object',
          required: ['self', 'members'],
          properties: {
            self: { type: 'string' },
            topology: { $ref: '#/components/schemas/Topology' },
            members: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'state', 'http', 'gossip', 'incarnation'],
                properties: {
                  id: { type: 'string' },
                  state: { type: 'string', enum: ['alive', 'suspect', 'dead', 'left', 'joining', 'leaving'] },
                  ring: { type: 'string', enum: ['joining', 'normal', 'leaving', 'left', 'removing', 'removed'] },
                  http: { type: 'string' },
                  gossip: { type: 'string' },
                  incarnation: { type: 'integer' },
                },
              },
            },
          },
        },
        Topology: {
          type: 'object',
          description: 'The ownership table and the membership change in progress (docs/topology.md)',
          properties: {
            epoch: { type: 'string' },
            ring: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string' }, version: { type: 'integer' } } } },
            change: { type: ['object', 'null'] },
            transfers: {
              type: 'array',
              items: {
                type: 'object',
                properties: { partition: { type: 'integer' }, to: { type: 'string' }, from: { type: 'array', items: { type: 'string' } }, state: { type: 'string', enum: ['waiting', 'streaming', 'done'] } },
              },
            },
          },
        },
        RepairLine: {
          type: 'object',
          required: ['type'],
          properties: {
            type: { type: 'string', enum: ['progress', 'summary', 'error'] },
            done: { type: 'integer' },
            total: { type: 'integer' },
            inSync: { type: 'boolean' },
            rangesCompared: { type: 'integer' },
            keysSent: { type: 'integer' },
            keysReceived: { type: 'integer' },
            bytesSent: { type: 'integer' },
            bytesReceived: { type: 'integer' },
            durationMs: { type: 'number' },
          },
        },
      },
    },
  };
  // Every operation but health and this document takes a token: say so, and add its two refusals.
  for (const [path, operations] of Object.entries(document.paths)) {
    for (const operation of Object.values(operations) as Array<{ security?: unknown; responses: Record<number, unknown> }>) {
      if (OPEN_PATHS.has(path)) {
        operation.security = [];
        continue;
      }
      operation.responses[401] = errorRef('UNAUTHENTICATED: no token, or one the node does not accept (a node with an auth file)');
      operation.responses[403] = errorRef('FORBIDDEN: the token lacks the scope, or the key is outside its prefixes (never says whether the key exists)');
    }
  }
  return document;
}

const OPEN_PATHS: ReadonlySet<string> = new Set(['/v1/health', '/v1/openapi.json']);
