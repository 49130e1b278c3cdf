/**
 * Device secrets and PINs are stored only as salted hashes, each as slow as its guessability
 * asks. Shared by the server (which hashes) and the gateway (which verifies, gateway/credentials.ts).
 *
 * - A device secret is 192 random bits the server makes (`newDeviceSecret`): no one can guess
 *   it, hash or no hash, so it is hashed once with SHA-256 (`sha256$salt$hash`), as API tokens
 *   are (NIST SP 800-63B §5.1.2.2: a one-way function suffices from 112 bits of entropy). It was
 *   scrypt: 16 MiB and tens of milliseconds per check, which bought nothing against guessing and
 *   cost a gateway minutes to let a ward's fleet in the first time (a replacement gateway), and
 *   let wrong passwords for one printed device id hold that device's sign-in.
 * - A PIN is a few digits a person chose: scrypt (`scrypt$N$r$p$salt$hash`, base64url), the cost
 *   kept in the format so it can be raised later. Device secrets stored as scrypt before (older
 *   versions) are still verified; rotating the secret moves a device to the fast form.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

const COST = { N: 16384, r: 8, p: 1 }
const KEY_LENGTH = 32

function scryptAsync (secret: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_LENGTH, { N, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => err ? reject(err) : resolve(key))
  })
}

function sha256 (salt: Buffer, secret: string): Buffer {
  return createHash('sha256').update(salt).update(secret).digest()
}

/** The stored form of a device secret made by `newDeviceSecret`. */
export function hashDeviceSecret (secret: string): string {
  const salt = randomBytes(16)
  return ['sha256', salt.toString('base64url'), sha256(salt, secret).toString('base64url')].join('$')
}

/** The stored form of a PIN (or anything a person chose): slow on purpose. */
export async function hashPin (pin: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await scryptAsync(pin, salt, COST.N, COST.r, COST.p)
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** Whether checking against `stored` costs a scrypt (a PIN, or a device secret from an older version). */
export function isSlowHash (stored: string): boolean {
  return stored.startsWith('scrypt$')
}

/** Whether `secret` is what `stored` was made from, in either form; false for a form not known. */
export async function verifySecret (secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length === 3 && parts[0] === 'sha256') {
    const expected = Buffer.from(parts[2]!, 'base64url')
    const key = sha256(Buffer.from(parts[1]!, 'base64url'), secret)
    return key.length === expected.length && timingSafeEqual(key, expected)
  }
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string]
  const expected = Buffer.from(hash, 'base64url')
  const key = await scryptAsync(secret, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p))
  return key.length === expected.length && timingSafeEqual(key, expected)
}

/** A new device secret: 24 random bytes, URL- and shell-safe. */
export function newDeviceSecret (): string {
  return randomBytes(24).toString('base64url')
}
