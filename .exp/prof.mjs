// node prof.mjs file.cpuprofile [N] : self time by function and by file
import { readFileSync } from 'node:fs'
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const N = +(process.argv[3] ?? 40)
const byId = new Map(p.nodes.map(n => [n.id, n]))
const self = new Map()
const dt = p.timeDeltas; let total = 0
const counts = new Map()
for (let i = 0; i < p.samples.length; i++) { counts.set(p.samples[i], (counts.get(p.samples[i]) ?? 0) + (dt[i] ?? 0)); total += dt[i] ?? 0 }
const fn = new Map(), file = new Map()
for (const [id, t] of counts) {
  const n = byId.get(id); const cf = n.callFrame
  const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/work\/main\//, '')}:${cf.lineNumber}`
  fn.set(k, (fn.get(k) ?? 0) + t)
  const f = cf.url ? cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/work\/main\//, '').replace(/^(nm\/(@[^/]+\/)?[^/]+).*/, '$1') : cf.functionName
  file.set(f, (file.get(f) ?? 0) + t)
}
const show = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, N).forEach(([k, t]) => console.log((100 * t / total).toFixed(1).padStart(5) + '%', k))
console.log('total ms', (total / 1000).toFixed(0)); show(file); console.log('---'); show(fn)
