import type { BuiltinProviders } from '@trousseau/core';

/** The providers that ship with Trousseau, by the `type` name a config file uses. */
export const BUILTIN_PROVIDERS: BuiltinProviders = {
  local: () => import('@trousseau/provider-local'),
  vault: () => import('@trousseau/provider-vault'),
  awskms: () => import('@trousseau/provider-awskms'),
  azure: () => import('@trousseau/provider-azure'),
};
