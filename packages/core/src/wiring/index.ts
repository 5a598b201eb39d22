// @trousseau/core/wiring: the dependency-injection wiring (tsyringe). Import 'reflect-metadata' once
// before this entry, in the process entry point.
export {
  createProviders,
  createTrousseauContainer,
  registerSingleton,
  registerValue,
  resolveToken,
  type ContainerInputs,
} from './container.js';
export { createToken, providerToken, TOKENS, type Token } from './tokens.js';
export type { DependencyContainer } from 'tsyringe';
