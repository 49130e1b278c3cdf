/**
 * MQTT topics of device protocol v1 (DESIGN.md §3), defined once and used by the gateway,
 * the server and the device simulator.
 */

export const TOPIC_ROOT = 'sos/v1'

/**
 * Device ids are lowercase, start alphanumeric, 3–64 chars: safe in topics, URLs and file names.
 * `announce` is not one: `sos/v1/announce/{zone}` is the zones' announcements, and a device of
 * that name would have heard zone `ack`'s as its acks (and its acks gone to that zone's kiosks).
 */
export const DEVICE_ID_PATTERN = /^(?!announce$)[a-z0-9][a-z0-9-]{2,63}$/

export function isDeviceId (value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value)
}

export const topics = {
  event: (deviceId: string) => `${TOPIC_ROOT}/${deviceId}/event`,
  status: (deviceId: string) => `${TOPIC_ROOT}/${deviceId}/status`,
  ack: (deviceId: string) => `${TOPIC_ROOT}/${deviceId}/ack`,
  cmd: (deviceId: string) => `${TOPIC_ROOT}/${deviceId}/cmd`,
  announce: (zone: string) => `${TOPIC_ROOT}/announce/${zone}`
} as const

export type DeviceTopicKind = 'event' | 'status' | 'ack' | 'cmd'

export interface ParsedTopic {
  deviceId: string
  kind: DeviceTopicKind
}

const DEVICE_TOPIC_KINDS = new Set<string>(['event', 'status', 'ack', 'cmd'])

/** Parses `sos/v1/{deviceId}/{kind}`; anything else (including wildcards) is null. */
export function parseDeviceTopic (topic: string): ParsedTopic | null {
  const parts = topic.split('/')
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return null
  const [, , deviceId, kind] = parts as [string, string, string, string]
  if (!isDeviceId(deviceId) || !DEVICE_TOPIC_KINDS.has(kind)) return null
  return { deviceId, kind: kind as DeviceTopicKind }
}

/**
 * A client id is the device id, or `{deviceId}:{suffix}` for a second connection of the same
 * device (a service tool, a test subscriber). Returns the device id, or null for any other id,
 * so no client can take over another device's session.
 */
export function deviceIdOfClientId (clientId: string): string | null {
  const colon = clientId.indexOf(':')
  const deviceId = colon === -1 ? clientId : clientId.slice(0, colon)
  if (!isDeviceId(deviceId)) return null
  if (colon !== -1 && !/^[A-Za-z0-9_.-]{1,64}$/.test(clientId.slice(colon + 1))) return null
  return deviceId
}

/** Longest topic a device has any reason to use; longer ones are garbage or an attack. */
export const MAX_TOPIC_LENGTH = 256

/**
 * What is wrong with a topic name as received, or undefined. The MQTT parser decodes topic
 * bytes leniently (invalid UTF-8 becomes U+FFFD) and lets control characters through, so the
 * gateway checks what MQTT 3.1.1 §1.5.3 forbids itself.
 */
export function topicProblem (topic: string): string | undefined {
  if (topic.length === 0) return 'empty topic'
  if (topic.length > MAX_TOPIC_LENGTH) return `topic longer than ${MAX_TOPIC_LENGTH} characters`
  if (topic.includes('\ufffd')) return 'topic is not valid UTF-8'
  if (/[\u0000-\u001f\u007f-\u009f]/.test(topic)) return 'topic contains control characters'
  return undefined
}
