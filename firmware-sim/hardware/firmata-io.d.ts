/** firmata-io ships no types: the constructor is all the driver uses (a transport in, a johnny-five IO out). */
declare module 'firmata-io' {
  import type { EventEmitter } from 'node:events'
  class Firmata extends EventEmitter {
    constructor (transport: unknown, options?: Record<string, unknown>)
  }
  /** The CommonJS export: a function binding a default transport, with the class attached. */
  const bindTransport: { (transport: unknown): typeof Firmata, Firmata: typeof Firmata }
  export default bindTransport
}
