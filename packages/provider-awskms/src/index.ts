// The `awskms` provider. Work in progress: see the issue for this provider.
export const PROVIDER_TYPE = 'awskms';
