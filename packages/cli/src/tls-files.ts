/**
 * The node's TLS files (`--tls-cert`, `--tls-key`, `--tls-ca`): read at
 * start, where a bad file stops the start (exit 2), and read again on SIGHUP
 * and whenever one of them changes, where a bad set is logged and the
 * certificates in force stay. The HTTP server takes a reloaded set for new
 * connections (`setSecureContext`), and so does the internode client.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { CLI_ERROR_CODES, CliError, describe, EXIT_USAGE } from './errors.ts';
import { reloadOnChange, type Reloader } from './file-watch.ts';
import type { Logger } from './logger.ts';
import { readPrivateFile } from './private-files.ts';
import { readFile } from 'node:fs/promises';

/** A PEM file is a few certificates; anything larger is not one. */
export const TLS_FILE_BYTES_MAX = 1024 * 1024;

export interface TlsFiles {
  /** PEM certificate chain of this node (server, and client towards peers that ask). */
  readonly certFile: string;
  /** PEM private key of the certificate; refused when others may read it. */
  readonly keyFile: string;
  /** PEM CA certificates that sign the nodes' certificates: how this node verifies peers. Default: the system's CAs. */
  readonly caFile?: string;
}

interface Pem {
  readonly cert: string;
  readonly key: string;
  readonly ca: string | undefined;
}

/** What a certificate says, for logs: subject, expiry and fingerprint. */
export interface CertificateSummary {
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

export class TlsMaterial {
  readonly files: TlsFiles;
  #pem: Pem;
  #clientContext: SecureContext;
  readonly #logger: Logger;
  readonly #listeners = new Set<() => void>();
  #reloader: Reloader | undefined;

  private constructor(files: TlsFiles, pem: Pem, logger: Logger) {
    this.files = files;
    this.#pem = pem;
    this.#clientContext = clientContextOf(pem);
    this.#logger = logger;
  }

  /** Reads and checks the files (throwing `CliError`, exit 2, when unusable), then reloads them on change and SIGHUP until `close()`. */
  static async open(files: TlsFiles, logger: Logger): Promise<TlsMaterial> {
    const material = new TlsMaterial(files, await readTlsFiles(files), logger);
    material.#reloader = reloadOnChange(
      [files.certFile, files.keyFile, ...(files.caFile === undefined ? [] : [files.caFile])],
      (reason) => material.#reloadOnce(reason),
      (error) => logger.warn({ err: error }, 'cannot watch a TLS file for changes; reload the certificates with SIGHUP'),
    );
    return material;
  }

  /** Options for `https.createServer` and `setSecureContext`. */
  serverOptions(requestCert: boolean): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: false } {
    const { cert, key, ca } = this.#pem;
    // Never rejected at the handshake: clients of the public API show no certificate; the internode routes check.
    return { cert, key, ...(ca === undefined ? {} : { ca }), requestCert, rejectUnauthorized: false };
  }

  /** The context of new connections to peers: the CA to verify them, this node's certificate to show. */
  clientContext(): SecureContext {
    return this.#clientContext;
  }

  certificate(): CertificateSummary {
    return summaryOf(this.#pem.cert);
  }

  /** Calls `listener` after every good reload; returns the function that stops it. */
  onReload(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads the files again; resolves once done (and any reload asked for meanwhile). Never rejects. */
  reload(reason: string): Promise<void> {
    return this.#reloader?.reload(reason) ?? this.#reloadOnce(reason);
  }

  async #reloadOnce(reason: string): Promise<void> {
    let pem: Pem;
    try {
      pem = await readTlsFiles(this.files);
    } catch (error) {
      this.#logger.error({ reason, err: error }, `TLS files not reloaded (${describe(error)}); the certificate in force stays`);
      return;
    }
    if (pem.cert === this.#pem.cert && pem.key === this.#pem.key && pem.ca === this.#pem.ca) return;
    this.#pem = pem;
    this.#clientContext = clientContextOf(pem);
    for (const listener of this.#listeners) listener();
    this.#logger.info({ reason, certificate: summaryOf(pem.cert) }, `TLS certificates reloaded (${reason}); new connections use them`);
  }

  close(): void {
    this.#reloader?.close();
  }
}

/** Reads the three files and checks that they make a usable context (the key matches the certificate). */
async function readTlsFiles(files: TlsFiles): Promise<Pem> {
  const read = async (path: string, what: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      throw new CliError(CLI_ERROR_CODES.FILE_UNREADABLE, `cannot read ${what} ${path}: ${describe(error)}`, { cause: error, exitCode: EXIT_USAGE });
    }
  };
  const cert = await read(files.certFile, 'TLS certificate');
  const key = await readPrivateFile(files.keyFile, 'TLS key', TLS_FILE_BYTES_MAX);
  const ca = files.caFile === undefined ? undefined : await read(files.caFile, 'TLS CA file');
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
    summaryOf(cert);
  } catch (error) {
    throw new CliError(CLI_ERROR_CODES.TLS_INVALID, `TLS files ${files.certFile} and ${files.keyFile}${ca === undefined ? '' : ` and ${files.caFile}`} do not make a usable certificate: ${describe(error)}`, {
      cause: error,
      exitCode: EXIT_USAGE,
    });
  }
  return { cert, key, ca };
}

function clientContextOf(pem: Pem): SecureContext {
  return createSecureContext({ cert: pem.cert, key: pem.key, ...(pem.ca === undefined ? {} : { ca: pem.ca }) });
}

function summaryOf(certPem: string): CertificateSummary {
  const certificate = new X509Certificate(certPem);
  return { subject: certificate.subject.replace(/\n/g, ', '), validTo: certificate.validTo, fingerprint256: certificate.fingerprint256 };
}
