/**
 * Ticket ids a resident reads off a kiosk screen and quotes on the phone: `R-` and four
 * characters from an alphabet without look-alikes (no 0/O, 1/I/L, U), e.g. `R-7K3Q`.
 * 30^4 = 810,000 ids; a collision is retried, and a crowded ward gets longer ids.
 */
import { randomInt } from 'node:crypto'

const ALPHABET = '23456789ABCDEFGHJKMNPQRSTVWXYZ'

export function newTicketId (length = 4): string {
  let id = 'R-'
  for (let i = 0; i < length; i++) id += ALPHABET[randomInt(ALPHABET.length)]
  return id
}

export const TICKET_ID_PATTERN = /^R-[2-9A-HJKMNP-TV-Z]{4,8}$/
