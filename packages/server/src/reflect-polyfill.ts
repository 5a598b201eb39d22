// The Reflect metadata polyfill tsyringe needs, loaded once for the composition root. reflect-metadata is
// CommonJS: `import 'reflect-metadata'` made Node's CommonJS lexer scan all of Reflect.js for export names
// on every start (about 20 ms, issue 12); `require` loads the same module without that scan.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('reflect-metadata');
