// What importing modules costs (docs/memory.md, section 1): V8 heap in use after collection, RssAnon
// and RssFile growth, in a fresh process. Run from the repository (packages resolve from here).
// usage: node --expose-gc scripts/memory-modules.mjs undici [more specifiers or absolute paths ...]
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const status = () => Object.fromEntries(readFileSync('/proc/self/status','utf8').split('\n').filter(l=>/^(VmRSS|RssAnon|RssFile)/.test(l)).map(l=>{const [k,v]=l.split(':');return [k, parseInt(v)/1024];}));
const snap = () => { gc(); gc(); const m = process.memoryUsage(); return { heap: m.heapUsed/1048576, heapTotal: m.heapTotal/1048576, ext: m.external/1048576, ...status() }; };
const before = snap();
for (const s of process.argv.slice(2)) await import(s.startsWith('/') ? pathToFileURL(s).href : s);
await new Promise(r => setTimeout(r, 200));
const after = snap();
const f = (x) => x.toFixed(1);
console.log(`${process.argv.slice(2).map(s=>s.replace(/.*dist\/src\//,'')).join(' ').padEnd(40)} heap +${f(after.heap-before.heap)} (used ${f(after.heap)}, total ${f(after.heapTotal)}) anon +${f(after.RssAnon-before.RssAnon)} (=${f(after.RssAnon)}) file +${f(after.RssFile-before.RssFile)} rss ${f(after.VmRSS)}`);
