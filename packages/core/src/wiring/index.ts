// @trousseau/core/wiring: the dependency-injection wiring (tsyringe). Import 'reflect-metadata' once
// before this entry, in the process entry point.
export { createBroker, createTrousseauContainer, resolveToken, type ContainerInputs } from './container.js';
export { TOKENS, type Token } from './tokens.js';
