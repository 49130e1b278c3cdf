/** mock-firmata ships no types: the little the tests use of it. */
declare module 'mock-firmata' {
  import { EventEmitter } from 'node:events'
  export class Firmata extends EventEmitter {
    constructor (options?: Record<string, unknown>)
    pinMode (pin: number, mode: number): void
    digitalWrite (pin: number, value: number): void
    analogWrite (pin: number, value: number): void
    digitalRead (pin: number, callback: (value: number) => void): void
  }
  const mock: { Firmata: typeof Firmata }
  export default mock
}
