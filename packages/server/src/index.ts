// @trousseau/server: the daemon as a value, for tools and tests. The CLI entry is bin.cts.
export { BUILTIN_PROVIDERS } from './builtin-providers.js';
export { buildProgram, runCli } from './cli.js';
export { embeddedDefaultConfig } from './embedded-default.js';
export { createLogger, type LogLevel } from './logger.js';
export { createServerContainer, SERVER_TOKENS, type ServerContainerOptions } from './server-container.js';
export { TrousseauServer, type TrousseauServerOptions } from './trousseau-server.js';
export { TROUSSEAU_VERSION } from './version.js';
