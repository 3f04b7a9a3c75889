#!/usr/bin/env node
// The operator CLI. Node 24 runs the TypeScript sources directly (type stripping).
import { run } from '../src/cli/main.ts';

// Exits explicitly: a command is done when `run` returns, whatever timers a driver left.
process.exit(await run(process.argv.slice(2)));
