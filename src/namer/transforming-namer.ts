// Linkerd 1's `namers[].transformers`: a namer whose bound addresses pass through transformers
// (servicemesh.yml mounts io.l5d.k8s a second time at /io.l5d.k8s.http with the daemonset
// transformer, so names bound there reach the router on the destination's node). The transforms
// are set after the interpreter exists, since daemonset binds the routers' own Service through it.

import type { Path } from '../dtab/path.js';
import type { NameTree } from '../dtab/name-tree.js';
import type { Addr, BoundName, EndpointTransform, Lookup, Namer } from './addr.js';
import { Var } from './var.js';

export class TransformingNamer implements Namer {
  readonly #inner: Namer;
  #transforms: readonly EndpointTransform[] = [];
  /** One derived addr per inner addr, so balancers keep their state across lookups. */
  readonly #addrs = new WeakMap<Var<Addr>, Var<Addr>>();

  constructor(inner: Namer) {
    this.#inner = inner;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  get prefix(): Path {
    return this.#inner.prefix;
  }

  setTransforms(transforms: readonly EndpointTransform[]): void {
    this.#transforms = transforms;
  }

  #addr(addr: Var<Addr>): Var<Addr> {
    let out = this.#addrs.get(addr);
    if (out === undefined) {
      out = Var.map(addr, (a): Addr => {
        if (a.kind !== 'bound') return a;
        let endpoints = [...a.endpoints];
        for (const t of this.#transforms) endpoints = t(endpoints).endpoints;
        return { ...a, endpoints };
      });
      this.#addrs.set(addr, out);
    }
    return out;
  }

  #tree(tree: NameTree<BoundName>): NameTree<BoundName> {
    switch (tree.kind) {
      case 'leaf':
        return { kind: 'leaf', value: { ...tree.value, addr: this.#addr(tree.value.addr) } };
      case 'alt':
        return { kind: 'alt', trees: tree.trees.map((t) => this.#tree(t)) };
      case 'union':
        return { kind: 'union', members: tree.members.map((m) => ({ weight: m.weight, tree: this.#tree(m.tree) })) };
      default:
        return tree;
    }
  }

  lookup(path: Path): Var<Lookup> {
    return Var.map(this.#inner.lookup(path), (l): Lookup => (l.kind === 'ok' ? { kind: 'ok', tree: this.#tree(l.tree) } : l));
  }

  close(): Promise<void> | void {
    return this.#inner.close?.();
  }

  evictIdle(): void {
    this.#inner.evictIdle?.();
  }

  get updates(): number | undefined {
    return this.#inner.updates;
  }

  get stale(): boolean | undefined {
    return this.#inner.stale;
  }

  startupReadiness(): () => boolean {
    return this.#inner.startupReadiness?.() ?? (() => true);
  }

  stateJson(): object {
    return this.#inner.stateJson?.() ?? {};
  }
}
