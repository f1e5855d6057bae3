// The concrete stage with per-client pools (io.l5d.static): a client with its own pools is
// balanced by the in-flight counts of those pools, not of the router's.

import { clockWithNow } from '../../../../src/core/clock.js';
import t from 'tap';
import { Path } from '../../../../src/dtab/path.js';
import { parsePath } from '../../../../src/dtab/parse.js';
import type { Addr, BoundName, Endpoint } from '../../../../src/namer/addr.js';
import { Var } from '../../../../src/namer/var.js';
import { EndpointPools } from '../../../../src/router/stages/endpoint/endpoint-pool.js';
import { FailureAccrual } from '../../../../src/router/stages/concrete/failure-accrual.js';
import { ConcreteStage } from '../../../../src/router/stages/concrete/concrete.js';

const ep = (port: number): Endpoint => ({ host: '10.1.0.1', port, meta: {} });

t.test("p2c reads a per-prefix client's own pools; other clients the router's", async (t) => {
  const routerPools = new EndpointPools(undefined);
  const own = new EndpointPools(undefined);
  t.teardown(async () => {
    await routerPools.close();
    await own.close();
  });
  const draws: number[] = [];
  const stage = new ConcreteStage({
    transforms: [],
    pools: routerPools,
    poolsFor: (client) => (client.startsWith('/$/inet') ? own : routerPools),
    accrual: new FailureAccrual({ policy: { kind: 'none' }, backoff: { kind: 'constant', ms: 0 } }, { clock: clockWithNow(() => 0) }),
    random: () => draws.shift() ?? 0,
  });
  const [e1, e2] = [ep(1), ep(2)];
  const name = (id: string): BoundName => ({ id: parsePath(id), residual: Path.empty, addr: new Var<Addr>({ kind: 'bound', endpoints: [e1, e2] }) });
  own.get(e1).inFlight = 7; // busy in the client's own pools
  routerPools.get(e2).inFlight = 7; // busy in the router's
  draws.push(0, 0);
  t.same(stage.choose({ kind: 'leaf', value: name('/$/inet/10.1.0.1/1') }, {}).endpoint, e2, 'the per-prefix client avoids its own busy endpoint');
  draws.push(0, 0);
  t.same(stage.choose({ kind: 'leaf', value: name('/#/io.l5d.k8s/x') }, {}).endpoint, e1, "another client avoids the router pools' busy one");
  own.get(e1).inFlight = 0;
  routerPools.get(e2).inFlight = 0;
});
