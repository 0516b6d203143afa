#!/usr/bin/env node
import { runCli } from './program.ts';

const exitCode = await runCli(process.argv.slice(2));
process.exitCode = exitCode;
// Every command closes what it opened, so the process ends by itself; this
// unref'd timer only bounds a stray handle (e.g. a client's keep-alive socket).
setTimeout(() => process.exit(exitCode), 2_000).unref();
