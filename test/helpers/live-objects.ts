// Counting live objects of a kind in this process (V8's queryObjects, through an in-process
// inspector session): what a memory test asserts instead of heap bytes where it can (a count does
// not move with the V8 version or the machine).

import inspector from 'node:inspector';

/** Live objects whose prototype chain includes `proto` (queryObjects collects garbage first). */
export function liveObjects(proto: object): number {
  const session = new inspector.Session();
  session.connect();
  const post = <T>(method: string, params: object): T => {
    let out: T | undefined;
    let error: Error | null = null;
    // In-process sessions answer synchronously.
    session.post(method, params, (err, res) => {
      error = err;
      out = res as T;
    });
    if (error !== null) throw error;
    return out as T;
  };
  const slot = '__liveObjectsProto';
  (globalThis as Record<string, unknown>)[slot] = proto;
  try {
    const { result } = post<{ result: { objectId: string } }>('Runtime.evaluate', { expression: `globalThis.${slot}` });
    const { objects } = post<{ objects: { objectId: string } }>('Runtime.queryObjects', { prototypeObjectId: result.objectId });
    const counted = post<{ result: { value: number } }>('Runtime.callFunctionOn', {
      objectId: objects.objectId,
      functionDeclaration: 'function () { return this.length; }',
      returnByValue: true,
    });
    return counted.result.value;
  } finally {
    delete (globalThis as Record<string, unknown>)[slot];
    session.disconnect();
  }
}
