// undici's dispatchers (Client, Pool, Agent) without the rest of undici. Importing 'undici' loads
// fetch, WebSocket, EventSource, the cache stores, mocks and interceptors as well: 4.7 MB of
// heap in every router that never uses them; these three with their request API take 1.8 MB
// (docs/memory.md, measured with node --expose-gc). Import undici's classes from here; `import
// type` from 'undici' is free.

import { createRequire } from 'node:module';
import type * as U from 'undici';

const require = createRequire(import.meta.url);
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof U.Dispatcher;
// What undici's index adds to every dispatcher: request(), stream(), pipeline(), connect(), upgrade().
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const Client = require('undici/lib/dispatcher/client.js') as typeof U.Client;
export type Client = U.Client;
export const Pool = require('undici/lib/dispatcher/pool.js') as typeof U.Pool;
export type Pool = U.Pool;
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof U.Agent;
export type Agent = U.Agent;
