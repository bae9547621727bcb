/**
 * Entry point of the peer role, `p2p join`: a chat peer. The role lives in `lib/roles/join.ts`;
 * `main.ts` parses the arguments and calls {@link join}.
 *
 * @module
 */
export { join, type JoinOptions } from "./lib/roles/join.ts";
