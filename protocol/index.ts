export * from './topics.js'
export * from './event.js'
export * from './ack.js'
export * from './ingest.js'
