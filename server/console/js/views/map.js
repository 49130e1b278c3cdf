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
  let drawn = ''
  let fitted = false
  let focused = /** @type {string | null} */ (null)

  return {
    /** Redraws markers when something shown on the map changed. */
    update (/** @type {any} */ state) {
      const deviceList = [...state.devices.values()].filter((d) => d.lat != null && d.lon != null)
      const alertList = [...state.alerts.values()].filter((a) => a.lat != null && a.lon != null)
      const key = JSON.stringify([
        deviceList.map((d) => [d.id, d.name, d.lat, d.lon, d.online, (d.battery ?? 100) < LOW_BATTERY]),
        alertList.map((a) => [a.id, a.state, a.kind, a.pressCount]), state.selectedId, document.documentElement.lang
      ])
      if (key !== drawn) {
        drawn = key
        devices.clearLayers()
        alerts.clearLayers()
        for (const d of deviceList) {
          const color = !d.online ? '#6b7280' : (d.battery ?? 100) < LOW_BATTERY ? '#b45309' : '#15803d'
          L.circleMarker([d.lat, d.lon], { radius: 7, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 })
            .bindTooltip(textNode(`${d.name} · ${d.online ? t('fleet.online') : t('fleet.offline')}`))
            .addTo(devices)
        }
        for (const a of alertList) {
          const selected = state.selectedId === a.id
          const icon = L.divIcon({
            className: '',
            html: `<div class="alert-pin state-${a.state} kind-${a.kind}${selected ? ' selected' : ''}"><span>!</span></div>`,
            iconSize: [34, 34],
            iconAnchor: [17, 17]
          })
          L.marker([a.lat, a.lon], { icon, zIndexOffset: selected ? 2000 : 1000, keyboard: true, title: a.deviceName ?? a.deviceId })
            // Always labelled: on a wall display nobody hovers, and without tiles the name is the landmark.
            .bindTooltip(textNode(a.deviceName ?? a.deviceId), { permanent: true, direction: 'top', offset: [0, -20], className: 'alert-label' })
            .on('click', () => select(a.id))
            .addTo(alerts)
        }
      }
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
