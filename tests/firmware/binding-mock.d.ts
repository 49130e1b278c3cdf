/**
 * @serialport/binding-mock ships types its package.json "exports" hide from NodeNext
 * resolution; this restates the part the tests use.
 */
declare module '@serialport/binding-mock' {
  import type { BindingInterface, BindingPortInterface, OpenOptions, PortInfo } from '@serialport/bindings-interface'
  export interface MockPortBinding extends BindingPortInterface {
    readonly recording: Buffer
    emitData (data: Buffer | string): void
  }
  export const MockBinding: BindingInterface<MockPortBinding, OpenOptions, PortInfo> & {
    createPort (path: string, options?: { echo?: boolean, record?: boolean, readyData?: Buffer }): void
    reset (): void
  }
}
