/** Fleet health: which devices are offline, low on battery or tampered with. */
import { html } from '/vendor/lit-html/lit-html.js'
import { repeat } from '/vendor/lit-html/directives/repeat.js'
import { t } from '../i18n.js'
import { age } from '../format.js'
import { LOW_BATTERY } from '../store.js'

const FILTERS = /** @type {const} */ (['attention', 'offline', 'lowBattery', 'tampered', 'all'])

/**
 * @param {any} state
 * @param {{ now: number, filter: typeof FILTERS[number] }} ui
 * @param {{ setFilter(f: string): void }} on
 */
export function fleetView (state, ui, on) {
  const rows = fleetRows(state)
  const matches = (/** @type {typeof rows[number]} */ r, /** @type {string} */ f) =>
    f === 'all' ? true : f === 'attention' ? r.attention : r.flags[/** @type {'offline'|'lowBattery'|'tampered'} */ (f)]
  const shown = rows.filter((r) => matches(r, ui.filter))
    .sort((a, b) => Number(b.attention) - Number(a.attention) || a.device.name.localeCompare(b.device.name))
  return html`
    <div class="page">
      <div class="page-head">
        <h2>${t('fleet.title')}</h2>
        <div class="filter" role="group">
          ${FILTERS.map((f) => html`
            <button data-filter=${f} aria-pressed=${ui.filter === f ? 'true' : 'false'} @click=${() => on.setFilter(f)}>
              ${t(`fleet.${f}`)} <span class="count">${rows.filter((r) => matches(r, f)).length}</span></button>`)}
        </div>
      </div>
      ${gatewaysTable(state.gateways, ui.now)}
      ${shown.length === 0 ? html`<p class="empty">${t('fleet.empty')}</p>` : html`
        <table class="grid fleet">
          <thead><tr>
            <th>${t('fleet.name')}</th><th>${t('fleet.kind')}</th><th>${t('zone')}</th>
            <th>${t('fleet.status')}</th><th>${t('fleet.battery')}</th><th>${t('fleet.lastSeen')}</th>
          </tr></thead>
          <tbody>${repeat(shown, (r) => r.device.id, ({ device: d, flags }) => html`
            <tr data-device-id=${d.id}>
              <td><strong>${d.name}</strong><br><code>${d.id}</code></td>
              <td>${t(`devicekind.${d.kind}`)}</td>
              <td>${d.zone}</td>
              <td class="chips">
                ${flags.offline ? html`<span class="chip bad">${t('fleet.offline')}</span>` : html`<span class="chip good">${t('fleet.online')}</span>`}
                ${flags.lowBattery ? html`<span class="chip warn">${t('fleet.lowBattery')}</span>` : ''}
                ${flags.tampered ? html`<span class="chip bad">${t('fleet.tampered')}</span>` : ''}
                ${flags.powerLost ? html`<span class="chip warn">${t('kind.power_lost')}</span>` : ''}
              </td>
              <td class=${flags.lowBattery ? 'warn-text' : ''}>${d.battery == null ? '–' : `${d.battery}%`}</td>
              <td>${d.lastSeenAt ? age(d.lastSeenAt, ui.now) : t('never')}</td>
            </tr>`)}
          </tbody>
        </table>`}
    </div>`
}

/** The gateways, lost ones first: when one is lost, every device behind it is unsupervised. */
function gatewaysTable (/** @type {any[] | null} */ gateways, /** @type {number} */ now) {
  if (!gateways || gateways.length === 0) return ''
  const sorted = [...gateways].sort((a, b) => Number(b.lost) - Number(a.lost) || a.id.localeCompare(b.id))
  return html`
    <h3 class="section-title">${t('gateways.title')}</h3>
    <table class="grid gateways">
      <thead><tr>
        <th>${t('gateways.name')}</th><th>${t('fleet.status')}</th><th>${t('gateways.devices')}</th>
        <th>${t('gateways.lastCall')}</th><th>${t('gateways.outbox')}</th>
      </tr></thead>
      <tbody>${repeat(sorted, (g) => g.id, (g) => html`
        <tr data-gateway-id=${g.id}>
          <td><code>${g.id}</code></td>
          <td class="chips">${g.lost
            ? html`<span class="chip bad">${t('gateways.lost')}</span>`
            : g.silent ? html`<span class="chip">${t('gateways.retired')}</span>` : html`<span class="chip good">${t('gateways.connected')}</span>`}${g.sharedId
            ? html` <span class="chip bad" title=${t('gateways.sharedIdHelp')}>${t('gateways.sharedId')}</span>` : ''}</td>
          <td>${g.devices}</td>
          <td>${age(g.lastContactAt, now)}</td>
          <td class="chips">${g.outbox == null ? '–' : g.outbox.full
            ? html`<span class="chip warn">${t('gateways.outboxFull')}</span> ${g.outbox.depth}`
            : g.outbox.depth}</td>
        </tr>`)}
      </tbody>
    </table>`
}

/** Each device with what is wrong with it: its own report (online, battery) and its active alerts. */
export function fleetRows (/** @type {any} */ state) {
  const activeByDevice = new Map()
  for (const a of state.alerts.values()) {
    if (!activeByDevice.has(a.deviceId)) activeByDevice.set(a.deviceId, new Set())
    activeByDevice.get(a.deviceId).add(a.kind)
  }
  const rows = [...state.devices.values()].map((d) => {
    const kinds = activeByDevice.get(d.id) ?? new Set()
    const flags = {
      offline: !d.online || kinds.has('device_offline'),
      lowBattery: (d.battery != null && d.battery < LOW_BATTERY) || kinds.has('battery_low'),
      tampered: kinds.has('tamper'),
      powerLost: kinds.has('power_lost')
    }
    return { device: d, flags, attention: flags.offline || flags.lowBattery || flags.tampered || flags.powerLost }
  })
  return rows
}
