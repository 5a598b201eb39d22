#!/usr/bin/env node
// The trousseau command. Each command loads what it needs when it runs, so `trousseau version` loads
// little more than the argument parser; reflect-metadata comes with the composition root (server-container).
import { runCli } from './cli.js';

const code = await runCli(process.argv);
if (code !== 0) process.exit(code);
