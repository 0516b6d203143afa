import { mkdir, access, constants as fsConstants, readFile, statfs } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { ClusterKeys } from '@hearsay/cluster';
import type { AddressInfo } from 'node:net';
import { join, resolve as resolvePath } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import {
  createApp,
  DEFAULT_LIMITS,
  DEFAULT_SERVER_LIMITS,
  guardServer,
  limitServer,
  LoadLimits,
  requestErrorResponse,
  validateServerLimits,
  type AppOptions,
  type HealthCheck,
  type HearsayApp,
  type ServerLimits,
  type SecurityReport,
  type TokenVerifier,
} from '@hearsay/http';
import { createLocalService, type KvService } from '@hearsay/service';
import { isStorageError, openStore, type Store } from '@hearsay/storage';
import { Counter } from 'prom-client';
import { CLI_ERROR_CODES, CliError, describe, hasCode } from './errors.ts';
import type { Logger } from './logger.ts';
import { makeDirPrivate } from './private-files.ts';

export interface NodeOptions {
  /** Holds the store, the node id and the clock's high-water mark. Created when missing. */
  readonly dataDir: string;
  readonly host: string;
  /** 0 picks a free port; `RunningNode.httpPort` says which. */
  readonly httpPort: number;
  // Cluster settings: parsed and logged now; the cluster package acts on them.
  readonly gossipPort: number;
  readonly seeds: readonly string[];
  readonly replicationFactor: number;
  /** The cluster key, or the keys of a rotation (`ClusterKeys`, changed in place as the key file is reloaded). */
  readonly clusterKey?: string | ClusterKeys;
  /** Run a cluster without a cluster key: the internode API open to anyone (warned at every start). */
  readonly insecure?: boolean;
  /** Client tokens (an `AuthFile`): every route but health then needs one. None: any client may do anything (warned). */
  readonly auth?: TokenVerifier;
  /** With `auth`: `/metrics` without a token. */
  readonly openMetrics?: boolean;
  /** Serve HTTPS with these certificates (a `TlsMaterial`, reloaded in place). None: plain HTTP. */
  readonly tls?: NodeTls;
  /**
   * With `tls`: ask every client for a certificate, and answer internode
   * routes (`/internal/*`) only over a connection whose certificate the CA
   * signed (401 otherwise). The public API still takes clients without one.
   */
  readonly tlsVerifyPeers?: boolean;
  /** The id of the node. A new data dir takes it; an existing one must have been created with it. Default: generated once and kept in the data dir. */
  readonly nodeId?: string;
  /** The maximum clock offset between nodes (`--max-clock-offset-ms`). Default 500. */
  readonly maxClockOffsetMs?: number;
  /**
   * Open the store although its clock high-water mark is further ahead of the
   * wall clock than the maximum offset (`--accept-clock-ahead`); it then
   * stamps nothing until the wall clock catches up. Default false: such a
   * start fails with `CLOCK_AHEAD`.
   */
  readonly acceptClockAhead?: boolean;
  readonly logger: Logger;
  /** How long `stop()` waits for requests in flight before it closes their connections. Default 10 000. */
  readonly drainTimeoutMs?: number;
  /** Bounds on what clients can hold (connections, timeouts, bodies in flight, free disk); unset ones keep `DEFAULT_NODE_LIMITS`. */
  readonly limits?: Partial<NodeLimits>;
  /**
   * What serves the keys. Default: `createLocalService` over the store (a
   * single node). The cluster package passes a factory that builds its
   * coordinator, gossip and internal routes here.
   */
  readonly createService?: ServiceFactory;
}

/** The node's own limits: the HTTP server's, the request-body budget, and the free disk space health asks for. */
export interface NodeLimits extends ServerLimits {
  /** Bytes of request bodies (PUT values and internode requests) read at once; past it, 503 BUSY (`--http-max-body-bytes-in-flight`). */
  readonly maxBodyBytesInFlight: number;
  /** `/v1/health` is not ok while the data dir's file system has less free space than this (`--min-free-disk-bytes`); 0 turns the check off. */
  readonly minFreeDiskBytes: number;
}

export const DEFAULT_NODE_LIMITS: NodeLimits = {
  ...DEFAULT_SERVER_LIMITS,
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  minFreeDiskBytes: 64 * 1024 * 1024,
};

/** How often the free disk space of the data dir is measured for `/v1/health`. */
export const DISK_CHECK_INTERVAL_MS = 5_000;

/** The node's certificates as the server needs them (`TlsMaterial` of tls-files.ts). */
export interface NodeTls {
  serverOptions(requestCert: boolean): HttpsServerOptions;
  /** Calls `listener` after the certificates change on disk; returns the function that stops it. */
  onReload(listener: () => void): () => void;
  certificate(): { readonly subject: string; readonly validTo: string; readonly fingerprint256: string };
  /** The context of connections to peers: the CA that verifies them, and this node's certificate to show them. */
  clientContext(): SecureContext;
}

export interface ServiceFactoryContext {
  readonly store: Store;
  /** The node's body budget and refusal counters: internode routes take their bodies' bytes from it too. */
  readonly load: LoadLimits;
  /** Absolute path of the data dir; the store occupies `STORE_SUBDIR` inside it. */
  readonly dataDir: string;
  /** Base URL of this node's HTTP API (the port is bound by now). */
  readonly httpUrl: string;
  readonly options: NodeOptions;
  readonly logger: Logger;
}

export interface NodeService {
  readonly service: KvService;
  /** Routes mounted under `/internal` (the internode API). */
  readonly internal?: AppOptions['internal'];
  /** Said in the startup log, e.g. `single-node` or `cluster`. */
  readonly mode: string;
  /** How the internode API is protected, for `/v1/health` (default `closed`: there is none). */
  readonly internode?: SecurityReport['internode'];
  /** Called on stop after the HTTP server has closed, before the store closes. */
  stop?(): Promise<void>;
}

export type ServiceFactory = (context: ServiceFactoryContext) => Promise<NodeService>;

/** The default `createService`: one node, no replicas. */
export const createLocalNodeService: ServiceFactory = async ({ store, httpUrl }) => ({
  service: createLocalService(store, { httpUrl }),
  mode: 'single-node',
});

export interface RunningNode {
  readonly nodeId: string;
  /** Absolute path of the data dir. */
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  /** Base URL of the node's HTTP API, e.g. `http://127.0.0.1:7000`. */
  readonly httpUrl: string;
  readonly store: Store;
  readonly service: KvService;
  readonly app: HearsayApp;
  /** Requests being served right now. */
  inFlight(): number;
  /**
   * Graceful stop: stop accepting connections, report `/v1/health` as
   * draining (503 `NOT_SERVING`), finish requests in flight (closing their connections after
   * `drainTimeoutMs`), then close the store. Idempotent; resolves when done.
   */
  stop(reason?: string): Promise<void>;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/** Opens the data dir and serves the HTTP API of one node over it. */
export async function startNode(options: NodeOptions): Promise<RunningNode> {
  const { logger } = options;
  const limits: NodeLimits = { ...DEFAULT_NODE_LIMITS, ...options.limits };
  checkLimits(limits);
  const dataDir = resolvePath(options.dataDir);
  await prepareDataDir(dataDir, logger);
  await warnOnLowFileLimit(limits.maxConnections, logger);
  const store = await openDataDirStore(dataDir, options);
  const ahead = store.clockStatus();
  if (ahead.stampsResumeAtMs !== null) {
    logger.warn(
      { clockAheadMs: ahead.aheadMs, stampsResumeAt: new Date(ahead.stampsResumeAtMs).toISOString() },
      `started on a clock high-water mark ${ahead.aheadMs} ms ahead of this machine's clock (--accept-clock-ahead): ` +
        `this node coordinates no writes until ${new Date(ahead.stampsResumeAtMs).toISOString()}`,
    );
  }
  const load = new LoadLimits({ maxBodyBytesInFlight: limits.maxBodyBytesInFlight });

  // The service reports the node's URL, known only once the port is bound
  // (--http-port 0), so the server listens first and gets its app right
  // after, before the event loop can deliver a request.
  let listener: ((request: IncomingMessage, response: ServerResponse) => Promise<void>) | undefined;
  let inFlight = 0;
  let draining = false;
  // One listener for every response ('close' fires once per response), so a request allocates no closure for it.
  const onResponseClose = (): void => {
    inFlight -= 1;
    // A keep-alive connection that just finished its last request would otherwise hold the server open.
    if (draining) server.closeIdleConnections();
  };
  const tls = options.tls;
  const verifyPeers = tls !== undefined && options.tlsVerifyPeers === true;
  let peerRefusals = 0;
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    inFlight += 1;
    response.on('close', onResponseClose);
    if (verifyPeers && request.url?.startsWith('/internal/') === true && !(request.socket as TLSSocket).authorized) {
      // Refused from the connection alone: the body is not read, and the connection closes.
      peerRefusals += 1;
      response
        .writeHead(401, { 'content-type': 'application/json', connection: 'close' })
        .end('{"error":{"code":"UNAUTHENTICATED","message":"internode requests need a client certificate signed by the cluster CA (--tls-ca)"}}');
      return;
    }
    // A repair's progress stream may be quiet longer than the stall timeout; the client's disconnect stops it.
    if (request.method === 'POST' && request.url?.startsWith('/v1/repair') === true) response.on('timeout', keepOpen);
    if (listener === undefined) {
      response.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' }).end('{"error":{"code":"NOT_SERVING","message":"starting"}}');
      return;
    }
    void listener(request, response);
  };
  // A TLS handshake counts against the time to send a request head.
  const server: Server =
    tls === undefined ? createServer(handle) : createHttpsServer({ ...tls.serverOptions(verifyPeers), handshakeTimeout: limits.headersTimeoutMs }, handle);
  const stopTlsReload = tls?.onReload(() => (server as unknown as { setSecureContext(options: HttpsServerOptions): void }).setSecureContext(tls.serverOptions(verifyPeers)));
  // Connections capped, slow heads, bodies and stalls timed out, refused bodies thrown away within a bound.
  limitServer(server, limits, load);
  // Bytes Node's parser refuses, and CONNECT, get JSON error answers instead of a dropped connection.
  // With the limits, a body declared over the value limit is refused before "100 Continue" invites it.
  guardServer(server, { maxValueBytes: DEFAULT_LIMITS.maxValueBytes, load });
  try {
    await listen(server, options.host, options.httpPort);
  } catch (error) {
    stopTlsReload?.();
    await store.close().catch(() => undefined);
    throw error;
  }
  // After listen, accept() can still fail (EMFILE: out of file descriptors); Node reports it as a server error.
  server.on('error', acceptErrorLogger(logger));
  const address = server.address() as AddressInfo;
  const httpUrl = `${tls === undefined ? 'http' : 'https'}://${formatHost(options.host)}:${address.port}`;
  let nodeService: NodeService;
  try {
    nodeService = await (options.createService ?? createLocalNodeService)({ store, load, dataDir, httpUrl, options, logger });
  } catch (error) {
    stopTlsReload?.();
    await new Promise((resolve) => server.close(resolve));
    await store.close().catch(() => undefined);
    throw error;
  }
  const { service } = nodeService;
  const disk = limits.minFreeDiskBytes > 0 ? watchFreeDisk(dataDir, limits.minFreeDiskBytes, logger) : undefined;
  const security: SecurityReport = { tls: tls !== undefined, internode: nodeService.internode ?? 'closed' };
  const appOptions: AppOptions = {
    service,
    logger,
    processMetrics: true,
    load,
    healthChecks: disk === undefined ? [] : [disk.check],
    security,
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(options.openMetrics === undefined ? {} : { openMetrics: options.openMetrics }),
  };
  const app = createApp(nodeService.internal === undefined ? appOptions : { ...appOptions, internal: nodeService.internal });
  // Paths or Host headers that the Request constructor refuses get a JSON 400 instead of node-server's bare 500.
  // No automatic cleanup: node-server would close a connection 500 ms after an answer that left its body unread,
  // resetting a client still sending it (a 413 seen as EPIPE); Node throws the body away itself, and
  // limitServer bounds that.
  listener = getRequestListener(app.fetch, { errorHandler: requestErrorResponse, autoCleanupIncoming: false });
  if (verifyPeers) {
    new Counter({
      name: 'hearsay_internode_peer_certificate_refusals_total',
      help: 'Internode requests refused because their connection showed no certificate the cluster CA signed (--tls-verify-peers).',
      registers: [app.registry],
      collect() {
        this.reset();
        this.inc(peerRefusals);
      },
    });
  }

  let stopping: Promise<void> | undefined;
  const running: RunningNode = {
    nodeId: store.nodeId,
    dataDir,
    host: options.host,
    httpPort: address.port,
    httpUrl,
    store,
    service,
    app,
    inFlight: () => inFlight,
    stop(reason = 'stop requested') {
      stopping ??= stopNode(reason);
      return stopping;
    },
  };

  async function stopNode(reason: string): Promise<void> {
    const startedMs = Date.now();
    draining = true;
    app.setDraining(true);
    logger.info({ reason, inFlight }, 'shutting down: no new connections, finishing requests in flight');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    const timer = setTimeout(() => {
      logger.warn({ inFlight, drainTimeoutMs }, 'requests still in flight after the drain timeout; closing their connections');
      server.closeAllConnections();
    }, drainTimeoutMs);
    await closed;
    clearTimeout(timer);
    disk?.stop();
    stopTlsReload?.();
    try {
      await nodeService.stop?.();
    } finally {
      await store.close();
    }
    logger.info({ durationMs: Date.now() - startedMs }, 'store closed; node stopped');
  }

  logger.info(
    {
      nodeId: store.nodeId,
      dataDir,
      http: httpUrl,
      gossipPort: options.gossipPort,
      seeds: options.seeds,
      replicationFactor: options.replicationFactor,
      mode: nodeService.mode,
    },
    `node ${store.nodeId} serving ${httpUrl} (data dir ${dataDir})`,
  );
  if (tls !== undefined) {
    const certificate = tls.certificate();
    logger.info({ certificate, verifyPeers }, `serving HTTPS with the certificate of ${certificate.subject} (valid until ${certificate.validTo})`);
    if (Date.parse(certificate.validTo) - Date.now() < CERTIFICATE_EXPIRY_WARNING_MS) {
      logger.warn({ validTo: certificate.validTo }, 'the TLS certificate expires within 30 days; replace the files (the node reloads them) before it does');
    }
  }
  if (options.auth === undefined) {
    logger.warn(
      { clientAuth: 'none' },
      `no --auth-file: any client that reaches ${httpUrl} can read, write and delete every key and run repair; make tokens with \`hearsay token create\``,
    );
  }
  return running;
}

function keepOpen(): void {}

/** A certificate closer than this to its expiry is warned about at start. */
const CERTIFICATE_EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;

function checkLimits(limits: NodeLimits): void {
  try {
    validateServerLimits(limits);
    for (const name of ['maxBodyBytesInFlight', 'minFreeDiskBytes'] as const) {
      if (!Number.isSafeInteger(limits[name]) || limits[name] < 0) throw new RangeError(`${name} must be a whole number of at least 0`);
    }
    if (limits.maxBodyBytesInFlight < DEFAULT_LIMITS.maxValueBytes) {
      throw new RangeError(`maxBodyBytesInFlight must be at least the value limit (${DEFAULT_LIMITS.maxValueBytes} bytes)`);
    }
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `HTTP limits: ${describe(error)}`, { cause: error });
  }
}

/** Each open connection is a file descriptor; LevelDB, gossip and logs need some more. */
const SPARE_FILE_DESCRIPTORS = 256;

/** Says so when the open-file limit is too low for the connection cap: accept() would fail before the cap refuses anything. */
async function warnOnLowFileLimit(maxConnections: number, logger: Logger): Promise<void> {
  const limit = await openFileLimit();
  if (limit !== undefined && limit < maxConnections + SPARE_FILE_DESCRIPTORS) {
    logger.warn(
      { openFileLimit: limit, maxConnections },
      `the open-file limit (${limit}) is below --http-max-connections (${maxConnections}) + ${SPARE_FILE_DESCRIPTORS}: raise it (ulimit -n) or lower the cap`,
    );
  }
}

/** The soft limit on open files of this process (Linux, from /proc/self/limits); undefined elsewhere. */
export async function openFileLimit(): Promise<number | undefined> {
  try {
    const line = (await readFile('/proc/self/limits', 'utf8')).split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line === undefined ? undefined : /^Max open files\s+(\d+)/.exec(line)?.[1];
    return soft === undefined ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

/** Logs failures to accept a connection at most once per 10 s: they can come in a burst. */
function acceptErrorLogger(logger: Logger): (error: NodeJS.ErrnoException) => void {
  let lastMs = -Infinity;
  let missed = 0;
  return (error) => {
    const nowMs = Date.now();
    if (nowMs - lastMs < 10_000) {
      missed += 1;
      return;
    }
    lastMs = nowMs;
    const hint = error.code === 'EMFILE' || error.code === 'ENFILE' ? ': out of file descriptors; raise the open-file limit or lower --http-max-connections' : '';
    logger.error({ err: error, code: error.code, alsoSince: missed }, `cannot accept HTTP connections (${error.code ?? error.message})${hint}`);
    missed = 0;
  };
}

/**
 * Measures the free space of the data dir's file system every
 * DISK_CHECK_INTERVAL_MS; `check` says the node cannot serve while it is
 * below `minFreeBytes` (a full disk fails every write).
 */
function watchFreeDisk(dataDir: string, minFreeBytes: number, logger: Logger): { check: HealthCheck; stop(): void } {
  let problem: string | undefined;
  let measuring = false;
  const measure = async (): Promise<void> => {
    if (measuring) return;
    measuring = true;
    try {
      const fs = await statfs(dataDir);
      const free = fs.bavail * fs.bsize;
      const was = problem;
      problem = free < minFreeBytes ? `the disk of the data dir is full: ${free} bytes free, below --min-free-disk-bytes ${minFreeBytes}` : undefined;
      if (problem !== undefined && was === undefined) logger.warn({ freeBytes: free, minFreeDiskBytes: minFreeBytes }, problem);
      if (problem === undefined && was !== undefined) logger.info({ freeBytes: free }, 'the disk of the data dir has free space again');
    } catch (error) {
      logger.warn({ err: error }, 'cannot measure the free space of the data dir');
    } finally {
      measuring = false;
    }
  };
  void measure();
  const timer = setInterval(() => void measure(), DISK_CHECK_INTERVAL_MS);
  timer.unref();
  return { check: () => problem, stop: () => clearInterval(timer) };
}

/** Creates the data dir private (0700), or makes an existing one private: it holds every value in the clear. */
async function prepareDataDir(dataDir: string, logger: Logger): Promise<void> {
  let tightened: { readonly fromMode: number } | undefined;
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await access(dataDir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    tightened = await makeDirPrivate(dataDir);
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.DATA_DIR_UNUSABLE, `data dir ${dataDir} is unusable: ${describe(error)}`, { cause: error });
  }
  if (tightened !== undefined) {
    logger.warn({ dataDir, fromMode: `0${tightened.fromMode.toString(8)}`, toMode: '0700' }, `data dir ${dataDir} was open to other users; made it private (0700)`);
  }
}

/** The store's LevelDB directory inside the data dir; the rest of the data dir is free for other parts of a node (e.g. hints). */
export const STORE_SUBDIR = 'store';

async function openDataDirStore(dataDir: string, options: NodeOptions): Promise<Store> {
  const location = join(dataDir, STORE_SUBDIR);
  try {
    return await openStore({
      location,
      ...(options.nodeId === undefined ? {} : { nodeId: options.nodeId }),
      ...(options.maxClockOffsetMs === undefined ? {} : { maxClockOffsetMs: options.maxClockOffsetMs }),
      ...(options.acceptClockAhead === true ? { acceptClockAhead: true } : {}),
    });
  } catch (error) {
    if (isStorageError(error, 'CLOCK_AHEAD')) {
      const untilMs = error.details?.untilMs;
      throw new CliError(
        CLI_ERROR_CODES.CLOCK_AHEAD,
        `refusing to start: ${error.message.replace(
          /accept the mark \(acceptClockAhead\): the store then opens but stamps no version until that time/,
          'start with --accept-clock-ahead: the node then serves reads, replication and repair but coordinates no writes until that time',
        )}` + (untilMs === undefined ? '' : '; or wipe the data dir and let hearsay repair refill it from the other replicas'),
        { cause: error },
      );
    }
    if (isStorageError(error, 'INVALID_ARGUMENT')) {
      throw new CliError(CLI_ERROR_CODES.INVALID_ARGUMENT, `store settings: ${error.message}`, { cause: error, exitCode: 2 });
    }
    if (isStorageError(error, 'NODE_ID_MISMATCH')) {
      throw new CliError(CLI_ERROR_CODES.NODE_ID_MISMATCH, `data dir ${dataDir} belongs to another node: ${error.message}`, { cause: error });
    }
    if (hasCode(error, 'LEVEL_LOCKED')) {
      throw new CliError(
        CLI_ERROR_CODES.DATA_DIR_LOCKED,
        `data dir ${dataDir} is in use by another process (is another hearsay node running on it?)`,
        { cause: error },
      );
    }
    throw new CliError(CLI_ERROR_CODES.DATA_DIR_UNUSABLE, `cannot open the store in data dir ${dataDir}: ${describe(error)}`, { cause: error });
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = `${formatHost(host)}:${port}`;
      if (error.code === 'EADDRINUSE') {
        reject(new CliError(CLI_ERROR_CODES.PORT_IN_USE, `HTTP port ${port} is already in use on ${host} (another process listens on ${where}); pick another with --http-port`, { cause: error }));
      } else if (error.code === 'EADDRNOTAVAIL' || error.code === 'EACCES' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
        reject(new CliError(CLI_ERROR_CODES.ADDRESS_UNAVAILABLE, `cannot listen on ${where}: ${describe(error)}`, { cause: error }));
      } else {
        reject(error);
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
