/**
 * Where the device's panic alert stands, as far as its acks tell, so the LED and the voice
 * never say something older than what the device already heard.
 *
 * Acks come on two paths in no fixed order: `received` returns with the server's answer to the
 * gateway's ingest request, the later states through the server's downlink. Either may be late
 * (a slow backhaul, a retried ingest whose answer is a `duplicate` without an alert id) or come
 * twice (a gateway that resends the current state when the device reconnects). So:
 * - the current alert only moves forward: received < acknowledged < dispatched < resolved | cancelled,
 *   and an ack that would not move it forward (a repeat, a late one) changes nothing;
 * - the alert id is taken from whichever ack brings it first;
 * - a device has at most one active panic alert (the server coalesces its presses into it), so
 *   its alerts follow one another in the order of their seqs: an ack of another alert with a
 *   later seq is news of a newer alert (the current one is over, even if that ack was lost),
 *   one with an earlier seq is old news about an alert already over.
 */
export type AlertStep = 'received' | 'acknowledged' | 'dispatched' | 'resolved' | 'cancelled'

const ORDER: Readonly<Record<AlertStep, number>> = { received: 0, acknowledged: 1, dispatched: 2, resolved: 3, cancelled: 3 }

export class AlertProgress {
  private id?: string
  private at?: AlertStep
  /** The latest seq heard of for the current alert: what orders it against other alerts. */
  private seq = -1

  /** The step the device shows, if it has heard of an alert. */
  get step (): AlertStep | undefined { return this.at }
  get alertId (): string | undefined { return this.id }

  /** Takes an ack about the panic alert; returns the step to show, or undefined when nothing changes. */
  advance (step: AlertStep, alertId: string | undefined, seq: number | undefined): AlertStep | undefined {
    if (this.concernsCurrent(alertId, seq)) {
      this.id ??= alertId
      if (seq !== undefined) this.seq = Math.max(this.seq, seq)
      if (this.at !== undefined && ORDER[step] <= ORDER[this.at]) return undefined
      this.at = step
      return step
    }
    if (!this.isNewer(alertId, seq)) return undefined
    this.id = alertId
    this.at = step
    if (seq !== undefined) this.seq = seq
    return step
  }

  /**
   * The current alert: the same id; or, while that alert is still active, an ack without an id
   * (a `duplicate` answer to an event already seen never starts a new alert) or the first id
   * heard for an alert known so far only by an id-less `received`.
   */
  private concernsCurrent (alertId: string | undefined, seq: number | undefined): boolean {
    if (this.at === undefined) return false
    if (alertId !== undefined && alertId === this.id) return true
    if (this.ended) return false
    if (alertId === undefined) return true
    return this.id === undefined && !isBefore(seq, this.seq)
  }

  /**
   * A newer alert than the current one: its ack's seq is not before anything heard of the
   * current one. Without an id, only once the current alert is over and with a later seq (a
   * press made after it, whose answer lost its id).
   */
  private isNewer (alertId: string | undefined, seq: number | undefined): boolean {
    if (alertId !== undefined) return !isBefore(seq, this.seq)
    return seq !== undefined && seq > this.seq
  }

  private get ended (): boolean {
    return this.at !== undefined && ORDER[this.at] === ORDER.resolved
  }
}

/** An ack without a seq cannot be placed, so it is not taken for old news. */
function isBefore (seq: number | undefined, than: number): boolean {
  return seq !== undefined && seq < than
}
