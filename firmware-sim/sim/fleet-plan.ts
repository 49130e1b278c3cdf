/**
 * Which devices the simulator runs: mixed kinds, spread over the zones (khu phố) of An Phú
 * Đông ward, District 12, Ho Chi Minh City, around 10.86 N, 106.70 E. Deterministic per index,
 * so a second run names and places the same fleet.
 */
import type { DeviceKind } from '../device/kinds.js'

export interface PlannedDevice {
  id: string
  kind: DeviceKind
  name: string
  zone: string
  lat: number
  lon: number
  silent: boolean
  /** Counter devices: the cancel PIN the shop owner knows. */
  pin?: string
}

/** Five neighbourhoods of the ward, each with a rough centre. */
const ZONES = [
  { zone: 'apd-kp1', name: 'Khu phố 1', lat: 10.8655, lon: 106.6985 },
  { zone: 'apd-kp2', name: 'Khu phố 2', lat: 10.8610, lon: 106.7050 },
  { zone: 'apd-kp3', name: 'Khu phố 3', lat: 10.8570, lon: 106.7000 },
  { zone: 'apd-kp4', name: 'Khu phố 4', lat: 10.8530, lon: 106.7080 },
  { zone: 'apd-kp5', name: 'Khu phố 5', lat: 10.8690, lon: 106.7100 }
] as const

const STREETS = ['Vườn Lài', 'Hà Huy Giáp', 'Quốc lộ 1A', 'An Phú Đông 9', 'An Phú Đông 27', 'Nguyễn Văn Quá', 'Thạnh Lộc 15']

/** Six in ten are street buttons, two kiosks, two shop counters (the kiosk and counter first, so small fleets have one of each). */
const KIND_CYCLE: DeviceKind[] = ['button', 'kiosk', 'counter', 'button', 'button', 'kiosk', 'button', 'counter', 'button', 'button']
const KIND_SHORT: Record<DeviceKind, string> = { button: 'btn', kiosk: 'kiosk', counter: 'shop' }

export function planFleet (count: number, prefix = 'sim'): PlannedDevice[] {
  return Array.from({ length: count }, (_, i) => {
    const kind = KIND_CYCLE[i % KIND_CYCLE.length]!
    const area = ZONES[i % ZONES.length]!
    const street = STREETS[i % STREETS.length]!
    // A golden-angle spiral around the zone centre: spread out, never stacked, same every run.
    const angle = i * 2.399963
    const radius = 0.0012 * Math.sqrt(1 + (i / ZONES.length))
    const number = String(i + 1).padStart(4, '0')
    return {
      id: `${prefix}-${KIND_SHORT[kind]}-${number}`,
      kind,
      name: `${kind === 'button' ? 'Trụ SOS' : kind === 'kiosk' ? 'Ki-ốt' : 'Cửa hàng'} ${street} (${area.name})`,
      zone: area.zone,
      lat: round6(area.lat + radius * Math.sin(angle)),
      lon: round6(area.lon + radius * Math.cos(angle)),
      silent: kind === 'counter',
      ...(kind === 'counter' ? { pin: String(1000 + ((i * 7919) % 9000)) } : {})
    }
  })
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6
