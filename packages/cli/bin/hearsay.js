#!/usr/bin/env node
// The installed `hearsay` command: the compiled CLI on plain Node, no loader.
// (From a clone of the repo, `pnpm hearsay` runs packages/cli/src/bin.ts through tsx instead.)
import '../dist/bin.js';
