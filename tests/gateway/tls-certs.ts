/** A throwaway PKI made with openssl for the TLS tests: a CA, a server certificate, device certificates. */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestPki {
  caCert: string
  serverCert: string
  serverKey: string
  /** Makes a client certificate with this CN, signed by the CA (or by `otherCa`). */
  clientCert(cn: string, signedBy?: 'ca' | 'rogue'): { cert: string, key: string }
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' })

function makeCa (dir: string, name: string): { cert: string, key: string } {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.pem`)
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], dir)
  return { cert, key }
}

function signed (dir: string, name: string, cn: string, ca: { cert: string, key: string }, extensions?: string): { cert: string, key: string } {
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const cert = join(dir, `${name}.pem`)
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`], dir)
  const args = ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2']
  if (extensions) {
    const ext = join(dir, `${name}.ext`)
    writeFileSync(ext, extensions)
    args.push('-extfile', ext)
  }
  openssl(args, dir)
  return { cert, key }
}

export function makeTestPki (dir: string): TestPki {
  const ca = makeCa(dir, 'ca')
  const rogue = makeCa(dir, 'rogue-ca')
  const server = signed(dir, 'server', 'localhost', ca, 'subjectAltName = DNS:localhost, IP:127.0.0.1\n')
  let n = 0
  return {
    caCert: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: (cn, signedBy = 'ca') => signed(dir, `client-${n++}`, cn, signedBy === 'ca' ? ca : rogue)
  }
}
