#!/usr/bin/env node
// The operator CLI. Node 24 runs the TypeScript sources directly (type stripping).
import { run } from '../src/cli/main.ts';

process.exitCode = await run(process.argv.slice(2));
