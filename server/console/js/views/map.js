/**
 * The map of devices and active alerts (Leaflet). Tiles only when the server is configured
 * with MAP_TILE_URL; without them (or offline) the markers stand on a plain grid, which is
 * enough to see where a press is relative to the other devices.
 */
import * as L from '/vendor/leaflet/leaflet-src.esm.js'
import { t } from '../i18n.js'
import { LOW_BATTERY } from '../store.js'

/** A tooltip holding plain text: names come from provisioning and must not be read as HTML. */
const textNode = (/** @type {string} */ text) => Object.assign(document.createElement('span'), { textContent: text })

/**
 * @param {HTMLElement} element
 * @param {{ tileUrl: string | null, tileAttribution: string, mapCenter: [number, number, number] }} config
 * @param {(id: string) => void} select
 */
export function createMap (element, config, select) {
  const [lat, lon, zoom] = config.mapCenter
  const map = L.map(element, { attributionControl: Boolean(config.tileUrl), zoomSnap: 0.5 }).setView([lat, lon], zoom)
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { attribution: config.tileAttribution, maxZoom: 19, subdomains: 'abc' }).addTo(map)
  } else {
    element.classList.add('no-tiles')
  }
  const devices = L.layerGroup().addTo(map)
  const alerts = L.layerGroup().addTo(map)
  // Markers are kept and changed in place, never all rebuilt: a wide outage's hundreds of
  // alerts, each rebuilt with its label on every change, froze the page for minutes and held
  // back the next panic (each label's placement is a layout of the page).
  /** @type {Map<string, { marker: any, sig: string }>} */
  const deviceMarkers = new Map()
  /** @type {Map<string, { marker: any, sig: string }>} */
  const alertMarkers = new Map()
  let fitted = false
  let focused = /** @type {string | null} */ (null)

  /** Brings `markers` to `items`: new ones added, changed ones redone, gone ones removed. */
  const sync = (/** @type {Map<string, { marker: any, sig: string }>} */ markers, /** @type {any} */ layer, /** @type {any[]} */ items,
    /** @type {(item: any) => string} */ signature, /** @type {(item: any) => any} */ make) => {
    const seen = new Set()
    for (const item of items) {
      seen.add(item.id)
      const sig = signature(item)
      const kept = markers.get(item.id)
      if (kept?.sig === sig) continue
      if (kept) layer.removeLayer(kept.marker)
      markers.set(item.id, { marker: make(item).addTo(layer), sig })
    }
    for (const [id, kept] of markers) {
      if (!seen.has(id)) { layer.removeLayer(kept.marker); markers.delete(id) }
    }
  }

  return {
    /** Redraws the markers whose device or alert changed. */
    update (/** @type {any} */ state) {
      const deviceList = [...state.devices.values()].filter((d) => d.lat != null && d.lon != null)
      const alertList = [...state.alerts.values()].filter((a) => a.lat != null && a.lon != null)
      const lang = document.documentElement.lang
      sync(deviceMarkers, devices, deviceList,
        (d) => JSON.stringify([d.name, d.lat, d.lon, d.online, (d.battery ?? 100) < LOW_BATTERY, lang]),
        (d) => {
          const color = !d.online ? '#6b7280' : (d.battery ?? 100) < LOW_BATTERY ? '#b45309' : '#15803d'
          return L.circleMarker([d.lat, d.lon], { radius: 7, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 })
            .bindTooltip(textNode(`${d.name} · ${d.online ? t('fleet.online') : t('fleet.offline')}`))
        })
      sync(alertMarkers, alerts, alertList,
        (a) => JSON.stringify([a.state, a.kind, a.lat, a.lon, a.deviceName ?? a.deviceId, state.selectedId === a.id]),
        (a) => {
          const selected = state.selectedId === a.id
          const icon = L.divIcon({
            className: '',
            html: `<div class="alert-pin state-${a.state} kind-${a.kind}${selected ? ' selected' : ''}"><span>!</span></div>`,
            iconSize: [34, 34],
            iconAnchor: [17, 17]
          })
          // A panic is always labelled: on a wall display nobody hovers, and without tiles the
          // name is the landmark. Others are labelled on hover: an outage's hundreds of labels
          // would bury the panic's.
          const label = a.kind === 'panic' || selected
          // Not in the tab order: the list holds every alert for the keyboard, and an outage's
          // markers stood between a selected card and its action buttons (over a hundred Tabs).
          return L.marker([a.lat, a.lon], { icon, zIndexOffset: selected ? 2000 : a.kind === 'panic' ? 1500 : 1000, keyboard: false, title: a.deviceName ?? a.deviceId })
            .bindTooltip(textNode(a.deviceName ?? a.deviceId), label ? { permanent: true, direction: 'top', offset: [0, -20], className: 'alert-label' } : { direction: 'top', offset: [0, -20] })
            .on('click', () => select(a.id))
        })
      if (!fitted && deviceList.length > 0) {
        fitted = true
        map.fitBounds(L.latLngBounds(deviceList.map((d) => [d.lat, d.lon])), { padding: [40, 40], maxZoom: 16 })
      }
      const selected = state.selectedId ? state.alerts.get(state.selectedId) ?? state.detail?.alert : null
      if (selected && selected.id !== focused && selected.lat != null) {
        map.setView([selected.lat, selected.lon], Math.max(map.getZoom(), 16))
      }
      focused = selected?.id ?? null
    },
    /** The map's box changed size (a tab became visible, a panel opened). */
    resize () { map.invalidateSize() },
    noTilesNote: () => (config.tileUrl ? '' : t('map.noTiles'))
  }
}
