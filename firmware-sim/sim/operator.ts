/**
 * `--operator`: the simulator also plays the ward operator, so a demo shows the whole loop
 * (LEDs go steady, then off): it acknowledges its own fleet's open panic alerts and resolves
 * them a little later. Only its own: pointed at a live server, it acknowledged and closed a
 * real device's panic as "real", patrol sent, while nobody had looked at it.
 */
export class SimOperator {
  private timer?: NodeJS.Timeout
  private readonly acknowledgedAt = new Map<string, number>()
  acknowledged = 0
  resolved = 0

  constructor (
    private readonly serverUrl: string,
    private readonly token: string,
    /** The simulated devices: the alerts of no other device are ever touched. */
    private readonly fleet: ReadonlySet<string>,
    private readonly resolveAfterMs = 3000
  ) {}

  start (): void {
    const tick = async () => {
      await this.round().catch(() => {})
      this.timer = setTimeout(tick, 1000)
    }
    this.timer = setTimeout(tick, 1000)
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  private async round (): Promise<void> {
    const open = await this.call('GET', '/v1/alerts?state=open&kind=panic&limit=1000') as Array<{ id: string, deviceId: string }>
    for (const alert of open.filter((a) => this.fleet.has(a.deviceId))) {
      await this.call('POST', `/v1/alerts/${alert.id}/acknowledge`, { note: 'simulated operator' })
      this.acknowledgedAt.set(alert.id, Date.now())
      this.acknowledged++
    }
    for (const [id, at] of this.acknowledgedAt) {
      if (Date.now() - at < this.resolveAfterMs) continue
      this.acknowledgedAt.delete(id)
      await this.call('POST', `/v1/alerts/${id}/resolve`, { outcome: 'real', note: 'simulated patrol' })
      this.resolved++
    }
  }

  private async call (method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(this.serverUrl + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`)
    return response.json()
  }
}
