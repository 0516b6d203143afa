export { startNode, createLocalNodeService, DEFAULT_DRAIN_TIMEOUT_MS, STORE_SUBDIR } from './node.ts';
export type { NodeOptions, RunningNode, NodeService, ServiceFactory, ServiceFactoryContext } from './node.ts';
export { createProgram, runCli, CLI_VERSION } from './program.ts';
export type { CommandContext } from './program.ts';
export type { CliIo, Output } from './io.ts';
export { createLogger, LOG_LEVELS } from './logger.ts';
export type { Logger, LoggerOptions } from './logger.ts';
export { CliError, CLI_ERROR_CODES, EXIT_OK, EXIT_FAILURE, EXIT_USAGE } from './errors.ts';
export { envOption, envVarOf } from './options.ts';
