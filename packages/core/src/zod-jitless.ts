import * as z from 'zod';

// Every zod schema in Trousseau is parsed a handful of times in a process's life (the config file, a key
// ring, a provider's options, at start and on reload), never per call. By default zod compiles each
// object schema into a function (`new Function`) on its first parse, which costs more than it saves
// here: about 4 ms of a start (issue 12). zod keeps this setting on `globalThis`, so it holds for a
// provider's own copy of zod too, and reads it when a schema is built: every module of core that builds a
// schema imports this one first.
z.config({ jitless: true });
