// The node flags a short-lived worker thread inherits: only those that load code (a TypeScript
// loader under test) and source maps. A worker gets all of process.execArgv by default, and some
// (--input-type, --inspect) make it fail or open a debugger port.

/**
 * The flags of `argv` that `worker` needs. Built, the worker is JavaScript: a TypeScript loader in
 * the flags (tap's, when the compiled tests run) would only cost each worker seconds of start-up.
 */
export function workerExecArgv(worker: URL, argv: readonly string[]): string[] {
  const needless = (flag: string): boolean => worker.pathname.endsWith('.js') && flag.includes('typescript');
  const keep: string[] = [];
  const withValue = new Set(['--import', '--loader', '--experimental-loader', '--require', '-r']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (withValue.has(a) && i + 1 < argv.length) {
      const value = argv[++i] as string;
      if (!needless(value)) keep.push(a, value);
    } else if ((/^--(import|loader|experimental-loader|require)=/.test(a) && !needless(a)) || a === '--enable-source-maps') {
      keep.push(a);
    }
  }
  return keep;
}
