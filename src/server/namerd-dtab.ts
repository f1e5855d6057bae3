// The dtab of a router with a namerd interpreter, read where namerd's io.l5d.k8s storage keeps it:
// the dtabs.l5d.io (v1alpha1) object named after the namerd namespace, in namerd's storage namespace,
// `{kind: DTab, dentries: [{prefix: "/svc", dst: "/#/io.l5d.k8s/default/http"}]}` (namerd's JSON:
// prefix and dst in dtab syntax). Watched: a change applies at once, as namerd's clients saw it.
// A version that does not parse, or a deleted object, is logged and the version in force stays.

import { Dtab } from '../dtab/dtab.js';
import type { K8sClient, KObject } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import { NAMERD_DTABS } from '../k8s/resources.js';
import type { BackoffOptions } from '../k8s/backoff.js';
import type { Logger } from '../log.js';
import type { Var } from '../namer/var.js';

/** A router whose dtab is namerd's, read from namerd's Kubernetes storage. */
export interface NamerdDtabConfig {
  /** The interpreter kind as configured (io.l5d.namerd, io.l5d.namerd.http, io.l5d.mesh). */
  readonly kind: 'io.l5d.namerd' | 'io.l5d.namerd.http' | 'io.l5d.mesh';
  /** The namerd namespace: the dtabs.l5d.io object's name (`namespace`, or `root` without its slash). */
  readonly namespace: string;
  /** The Kubernetes namespace namerd stores its dtabs in (namerd's storage default: default). */
  readonly storageNamespace: string;
  readonly host?: string;
  readonly port?: number;
  /** Where namerd was (`dst`): not contacted, named in messages. */
  readonly dst: string;
}

/** A DTab object's dentries as dtab text; throws (with the reason) when they are not dentries. */
export function namerdDentries(o: KObject): string {
  const dentries = o['dentries'];
  if (!Array.isArray(dentries)) throw new Error('no dentries list');
  return dentries
    .map((d: unknown, i) => {
      const e = (d ?? {}) as { prefix?: unknown; dst?: unknown };
      if (typeof e.prefix !== 'string' || typeof e.dst !== 'string') throw new Error(`dentries[${i}] needs prefix and dst strings`);
      return `${e.prefix}=>${e.dst};`;
    })
    .join('\n');
}

export interface NamerdDtabOptions {
  readonly config: NamerdDtabConfig;
  readonly client: K8sClient;
  readonly dtab: Var<Dtab>;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  /** A version refused (it does not parse, or the object was deleted). */
  readonly onReject?: (message: string) => void;
}

export class NamerdDtab {
  readonly #o: NamerdDtabOptions;
  readonly #informer: Informer;
  /** Where the dtab lives, for messages: `dtabs.l5d.io internal in namespace default`. */
  readonly where: string;
  #text: string | undefined;

  constructor(options: NamerdDtabOptions) {
    this.#o = options;
    const c = options.config;
    this.where = `namerd dtab ${c.namespace} (dtabs.l5d.io ${c.namespace} in namespace ${c.storageNamespace})`;
    this.#informer = new Informer({
      client: options.client,
      resource: NAMERD_DTABS,
      namespace: c.storageNamespace,
      fieldSelector: `metadata.name=${c.namespace}`,
      logger: options.logger,
      ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
    });
    this.#informer.on((e) => {
      if (e.object.metadata.name !== c.namespace) return;
      if (e.type === 'delete') {
        this.#reject(`${this.where} was deleted: the last version stays in force`);
        return;
      }
      this.#apply(e.object);
    });
  }

  /** The dtab text in force, once one was read. */
  get text(): string | undefined {
    return this.#text;
  }

  #apply(o: KObject): boolean {
    let text: string;
    let dtab: Dtab;
    try {
      text = namerdDentries(o);
      dtab = Dtab.read(text);
    } catch (err) {
      this.#reject(
        `${this.where}: version ${o.metadata.resourceVersion ?? '?'} is not a dtab (${(err as Error).message.split('\n')[0]}): the version in force stays`,
      );
      return false;
    }
    if (text === this.#text) return true;
    const first = this.#text === undefined;
    this.#text = text;
    this.#o.dtab.set(dtab);
    this.#o.logger.info({ dtab: dtab.show() }, first ? `${this.where} read` : `${this.where} changed`);
    return true;
  }

  #reject(message: string): void {
    this.#o.logger.error(message);
    this.#o.onReject?.(message);
  }

  /**
   * Lists and starts watching; resolves once the dtab is in force. Rejects, naming the object, when
   * the first list has none (a router that cannot route must not start), or it does not parse, or
   * the API does not answer within `timeoutMs`.
   */
  async start(timeoutMs: number): Promise<void> {
    this.#informer.start();
    const synced = await new Promise<boolean>((resolve) => {
      if (this.#informer.synced) return resolve(true);
      const timer = setTimeout(() => {
        off();
        resolve(false);
      }, timeoutMs);
      const off = this.#informer.onState(() => {
        if (!this.#informer.synced) return;
        clearTimeout(timer);
        off();
        resolve(true);
      });
    });
    if (!synced) {
      const why = this.#informer.lastError !== undefined ? `: ${this.#informer.lastError}` : '';
      throw new Error(`${this.where}: the Kubernetes API did not list it within ${timeoutMs} ms${why}`);
    }
    if (this.#text === undefined) {
      const o = this.#informer.get(this.#o.config.storageNamespace, this.#o.config.namespace);
      if (o === undefined) {
        throw new Error(
          `${this.where} does not exist: create it (namerctl dtab create ${this.#o.config.namespace}, or kubectl apply a DTab object), or set interpreter.dtabStorage.namespace to namerd's storage namespace`,
        );
      }
      if (!this.#apply(o)) throw new Error(`${this.where} is not a dtab: see the error above`);
    }
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
  }
}
