// Certificate reload: the files a TLS context was built from are watched; a new, complete set is
// applied to new handshakes, and a broken one is logged and counted while the old set stays.

import { FileSetWatcher } from '../fs/file-watcher.js';
import type { Logger } from '../log.js';
import type { TlsEvents } from './events.js';

/**
 * Reloads rotated certificate files (cert-manager, a re-applied Secret) without a restart: a valid
 * new set applies to new handshakes; a broken or half-written one is logged and counted, and the
 * certificates in force stay.
 */
export function watchTls(files: string[], apply: () => void, what: string, events: TlsEvents, logger: Logger, pollMs?: number): () => void {
  const watcher = new FileSetWatcher(
    files,
    () => {
      try {
        apply();
        events.reloaded('ok');
        logger.info({ tls: what }, 'certificates reloaded');
      } catch (err) {
        events.reloaded('rejected');
        logger.error({ tls: what, error: (err as Error).message }, 'certificate reload rejected; the previous certificates stay in force');
      }
    },
    pollMs,
    undefined,
    // A certificate or key swapped for a FIFO, a device or a file over 1 MiB: not read, said once.
    (message) => {
      events.reloaded('rejected');
      logger.error({ tls: what, error: message }, 'certificate reload rejected; the previous certificates stay in force');
    },
  );
  return () => watcher.close();
}
