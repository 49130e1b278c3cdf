import { describe, expect, it } from 'vitest'
import { hashDeviceSecret, hashPin, isSlowHash, newDeviceSecret, verifySecret } from '../../protocol/secret-hash.js'

describe('secret hashes', () => {
  it('stores a device secret as a salted SHA-256 and a PIN as scrypt, each verified only by what made it', async () => {
    const secret = newDeviceSecret()
    const stored = hashDeviceSecret(secret)
    expect(stored).toMatch(/^sha256\$[\w-]{22}\$[\w-]{43}$/)
    expect(stored).not.toContain(secret)
    expect(isSlowHash(stored)).toBe(false)
    // Salted: the same secret twice gives two forms, both true to it.
    const again = hashDeviceSecret(secret)
    expect(again).not.toBe(stored)
    expect(await verifySecret(secret, stored)).toBe(true)
    expect(await verifySecret(secret, again)).toBe(true)
    expect(await verifySecret(secret + 'x', stored)).toBe(false)
    expect(await verifySecret(newDeviceSecret(), stored)).toBe(false)

    const pin = await hashPin('4821')
    expect(isSlowHash(pin)).toBe(true)
    expect(await verifySecret('4821', pin)).toBe(true)
    expect(await verifySecret('4822', pin)).toBe(false)
  })

  it('still verifies a device secret an older version stored as scrypt', async () => {
    const secret = newDeviceSecret()
    expect(await verifySecret(secret, await hashPin(secret))).toBe(true)
  })

  it('refuses any stored form it does not know, or a damaged one', async () => {
    const stored = hashDeviceSecret('s3cret')
    for (const bad of ['', 'plain', 's3cret', 'md5$x$y', stored.slice(0, -4), stored.replace('sha256', 'SHA256'), `${stored}$extra`]) {
      expect(await verifySecret('s3cret', bad)).toBe(false)
    }
  })
})
