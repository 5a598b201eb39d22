#!/usr/bin/env node
// The trousseau command. reflect-metadata is loaded once, here, before anything imports tsyringe.
import 'reflect-metadata';
import { runCli } from './cli.js';

const code = await runCli(process.argv);
if (code !== 0) process.exit(code);
