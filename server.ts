/**
 * Entry point of the server role, `p2p serve`: the rendezvous and relay server. The role lives in
 * `lib/roles/serve.ts`; `main.ts` parses the arguments and calls {@link serve}.
 *
 * @module
 */
export { serve, type ServeOptions } from "./lib/roles/serve.ts";
