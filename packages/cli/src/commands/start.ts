import type { Command } from 'commander';
import { LOG_LEVELS } from '../log-format.ts';
import { envOption, parseNonNegativeInt, parsePort, parsePositiveInt, parseSeeds } from '../options.ts';
import type { CommandContext } from './context.ts';
import { tuningOf, type StartFlags } from './start-flags.ts';

/**
 * Advanced settings: unset, each keeps the default of the gossip or cluster
 * package (named in its help). Tests and `hearsay dev` use them to run the
 * protocols faster; docs/operations.md says what each trades.
 */
const TUNING_FLAGS: ReadonlyArray<readonly [flags: string, description: string]> = [
  ['--advertise-host <host>', 'host other nodes reach this one at, when --host is a wildcard such as 0.0.0.0 (advanced; default: --host)'],
  ['--gossip-probe-interval-ms <ms>', 'gossip: probe one member this often (advanced; default 1000)'],
  ['--gossip-probe-timeout-ms <ms>', 'gossip: direct probe timeout before indirect probes (advanced; default 500)'],
  ['--gossip-interval-ms <ms>', 'gossip: spread news this often (advanced; default 200)'],
  ['--gossip-push-pull-interval-ms <ms>', 'gossip: full state exchange with one member this often (advanced; default 30000)'],
  ['--request-timeout-ms <ms>', 'a client request waits this long for replicas (advanced; default 2000)'],
  ['--handoff-interval-ms <ms>', 'hints are offered to live members this often (advanced; default 10000)'],
  ['--hint-window-ms <ms>', 'hints older than this are dropped; repair covers them (advanced; default 10800000, 3 h)'],
  ['--tombstone-grace-ms <ms>', 'tombstones younger than this are never purged; at least --hint-window-ms (advanced; default 86400000, 1 day)'],
  ['--repair-interval-ms <ms>', 'background repair: pause between two partitions; 0 turns it off (advanced; default 1000)'],
  ['--ring-sync-interval-ms <ms>', 'membership changes: compare the ownership table with the members and take the next step this often (advanced; default 1000)'],
  ['--stream-rate-limit-bytes-per-sec <bytes>', 'membership changes: bytes per second streamed into this node when it takes partitions over; 0 = unlimited (advanced; default 33554432, 32 MiB/s)'],
];

/**
 * Limits on what clients and peers can make a node hold (docs/operations.md,
 * "Limits"): unset, each keeps the default named in its help.
 */
const LIMIT_FLAGS: ReadonlyArray<readonly [flags: string, description: string]> = [
  ['--http-max-connections <n>', 'HTTP connections open at once; at the cap the oldest connection without a request in progress makes room (default 1024)'],
  ['--http-idle-timeout-ms <ms>', 'an idle keep-alive connection is closed after this (advertised; closed 2 s later) (default 5000)'],
  ['--http-headers-timeout-ms <ms>', 'a request head must arrive within this, else 408 (default 10000)'],
  ['--http-receive-timeout-ms <ms>', 'a whole request, head and body, must arrive within this, else 408 (default 30000)'],
  ['--http-stall-timeout-ms <ms>', 'a connection with no byte moving either way for this long is closed (default 60000)'],
  ['--http-max-body-bytes-in-flight <bytes>', 'bytes of request bodies (values and internode requests) read at once; past it 503 BUSY (default 67108864, 64 MiB)'],
  ['--min-free-disk-bytes <bytes>', '/v1/health is not ok while the data dir has less free space; 0 turns the check off (default 67108864, 64 MiB)'],
  ['--internode-max-body-bytes <bytes>', 'largest internode request this node reads; peers send a quarter of it at most (default 16777216, 16 MiB; at least 4 MiB)'],
  ['--peer-max-queued-bytes <bytes>', 'bytes of writes queued for one peer; past it writes to it become hints or 503 BUSY (default 67108864, 64 MiB)'],
];

export function registerStartCommand(program: Command, context: CommandContext): void {
  const start = program
    .command('start')
    .summary('run a cluster node on this machine (serves the HTTP API until SIGINT/SIGTERM)')
    .description(
      'run a cluster node: open the store in the data dir, start gossip (a new cluster of one, or join through --seeds), ' +
        'and serve the HTTP API and the internode routes until SIGINT/SIGTERM; then finish requests in flight, leave the cluster, ' +
        'close the store and exit 0. Logs go to stdout (JSON, or readable lines on a terminal)',
    )
    .addOption(envOption('--data-dir <dir>', 'where the node keeps its data, id and clock (created when missing)').default('./data'))
    .addOption(envOption('--host <host>', 'address to listen on').default('127.0.0.1'))
    .addOption(envOption('--http-port <port>', 'HTTP port (0 picks a free one)').default(7000).argParser(parsePort))
    .addOption(envOption('--gossip-port <port>', 'gossip port, UDP and TCP (0 picks a free one)').default(7946).argParser(parsePort))
    .addOption(envOption('--seeds <host:port,...>', 'gossip addresses of nodes to join; none starts a new cluster of one').default([], 'none').argParser(parseSeeds))
    .addOption(envOption('--node-id <id>', 'id of the node: a new data dir takes it, an existing one must have been created with it (default: generated once, kept in the data dir)'))
    .addOption(
      envOption(
        '--replace <node-id>',
        'take over a dead member: this new data dir gets its id and ownership and streams its partitions from the other replicas before serving (needs --seeds)',
      ),
    )
    .addOption(
      envOption('--replication-factor <n>', 'replicas per key, capped at the member count').default(3).argParser(parsePositiveInt),
    )
    .addOption(envOption('--cluster-key-file <file>', 'file holding the cluster key (mode 600; make it with `hearsay key generate --out FILE`): signs internode requests and encrypts gossip; needed with --seeds'))
    .addOption(envOption('--cluster-key <key>', 'the cluster key itself; prefer --cluster-key-file or HEARSAY_CLUSTER_KEY (a command line is visible to every local user)').conflicts('clusterKeyFile'))
    .addOption(envOption('--insecure', 'join a cluster without a cluster key: the internode API is open to anyone who reaches the node (a trusted test network only; warned at every start)').default(false))
    .addOption(envOption('--auth-file <file>', 'client tokens (mode 600; `hearsay token create`): every route but /v1/health then needs Authorization: Bearer; reloaded on SIGHUP and on change (default: none, anyone may do anything)'))
    .addOption(envOption('--open-metrics', 'with --auth-file: serve /metrics without a token').default(false))
    .addOption(envOption('--tls-cert <file>', 'PEM certificate (chain) of this node: serve HTTPS, the API and the internode routes; reloaded on change and SIGHUP'))
    .addOption(envOption('--tls-key <file>', 'PEM private key of --tls-cert (mode 600)'))
    .addOption(envOption('--tls-ca <file>', "PEM CA certificates that sign the nodes' certificates: how this node verifies its peers (default: the system's CAs)"))
    .addOption(envOption('--tls-verify-peers', 'answer the internode routes only over connections whose client certificate --tls-ca signed (the public API takes clients without one)').default(false))
    .addOption(
      envOption(
        '--max-clock-offset-ms <ms>',
        'how far apart the clocks of the nodes may be (keep them within it with NTP): a node further off a majority of the others ' +
          'coordinates no writes (503 CLOCK_SKEW), and no node keeps a version stamped further ahead of its clock; the same on every node',
      )
        .default(500)
        .argParser(parsePositiveInt),
    )
    .addOption(
      envOption(
        '--accept-clock-ahead',
        "start although the clock high-water mark in the data dir is ahead of this machine's clock by more than the maximum offset " +
          '(its clock was set back, or it ran ahead): the node then serves reads, replication and repair but coordinates no writes ' +
          'until its clock passes the mark',
      ).default(false),
    )
    .addOption(envOption('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'));
  for (const [flags, description] of TUNING_FLAGS) {
    const option = envOption(flags, description);
    start.addOption(flags.startsWith('--advertise-host') ? option : option.argParser(parseNonNegativeInt));
  }
  for (const [flags, description] of LIMIT_FLAGS) {
    start.addOption(envOption(flags, description).argParser(flags.startsWith('--min-free-disk-bytes') ? parseNonNegativeInt : parsePositiveInt));
  }
  start.action(async (flags: StartFlags) => {
    // Loaded here, not at the top: `hearsay --help`, `get` and `put` never load the server.
    const { runNode } = await import('./run-node.ts');
    const clusterKeyOnCommandLine = start.getOptionValueSource('clusterKey') === 'cli';
    context.exitCode = await runNode({ ...flags, clusterKeyOnCommandLine }, tuningOf(flags), context.io.stdout.isTTY === true);
  });
}
