/**
 * `import()` of a module named at run time: a third-party provider, by file URL. A module of its own so that
 * the server's bundle can put its own in its place: the bundle runs from V8's code cache, where an
 * `import()` has no module loader to call, so there it is made by a file Node loads itself
 * (scripts/bundle-server.mjs, `native-import.cjs`).
 */
export function importModule(specifier: string): Promise<unknown> {
  return import(specifier);
}
