// Hostile clients against the node listener engine (servers[].engine: node): every case of
// test/helpers/hostile-server-engine-cases.ts (the other engine's are in hostile-server-engine-lean.test.ts).

import t from 'tap';
import { hostileServerEngineCases } from '../helpers/hostile-server-engine-cases.js';

t.setTimeout(120_000);
await hostileServerEngineCases(t, ['node']);
