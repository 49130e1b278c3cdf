/**
 * How many live streams are open, per token and in all. Each open stream holds a socket and a
 * little memory for as long as its client stays: without a bound, one token (a tab reopening
 * its stream in a loop, a script) or many clients together could hold the server's memory.
 * A ward's consoles and wall displays need a few streams each.
 */
export class StreamSlots {
  private readonly perToken = new Map<string, number>()
  private total = 0

  constructor (private readonly limits: { perToken: number, total: number }) {}

  /**
   * A slot for a stream of `tokenId`, with the function that gives it back (once; call it when
   * the stream ends), or why there is none.
   */
  take (tokenId: string): { release: () => void } | { refused: string } {
    const held = this.perToken.get(tokenId) ?? 0
    if (held >= this.limits.perToken) return { refused: `this token already has ${held} live streams open (at most ${this.limits.perToken}): close one first` }
    if (this.total >= this.limits.total) return { refused: `the server has ${this.total} live streams open (at most ${this.limits.total}): try again later` }
    this.perToken.set(tokenId, held + 1)
    this.total++
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        this.total--
        const left = (this.perToken.get(tokenId) ?? 1) - 1
        if (left > 0) this.perToken.set(tokenId, left)
        else this.perToken.delete(tokenId)
      }
    }
  }
}
