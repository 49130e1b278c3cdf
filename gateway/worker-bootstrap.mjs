// Worker threads on Node 20 do not inherit tsx's loader from the main thread: register it
// here, then load the TypeScript entry named in workerData.entry.
import { workerData } from 'node:worker_threads'
import { tsImport } from 'tsx/esm/api'

await tsImport(workerData.entry, import.meta.url)
