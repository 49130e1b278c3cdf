/**
 * PostgreSQL advisory lock keys, all in one place: two uses sharing a key serialize each other
 * for no reason, and a try-lock then mistakes the other use for a rival instance. (The gateway
 * watch once took the downlink queue's key: a pass started while an operator's acknowledgement
 * was being queued skipped raising alerts, and writers waited for the whole pass.)
 */
export const ADVISORY_LOCKS = Object.freeze({
  /** Servers starting together on one database apply each migration once. */
  migrations: 727274,
  /** Downlink rows become visible in id order (see downlink/queue.ts). */
  downlinkOrder: 727275,
  /** One gateway-watch pass at a time across server instances. */
  gatewayWatchPass: 727276
})
