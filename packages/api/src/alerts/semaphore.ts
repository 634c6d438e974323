/** Caps concurrent async work; `acquire()` resolves to a release function. */
export function createSemaphore(limit: number) {
  let active = 0
  const queue: (() => void)[] = []
  const release = () => {
    const next = queue.shift()
    if (next) next()
    else active--
  }
  return {
    async acquire(): Promise<() => void> {
      if (active < limit) {
        active++
        return release
      }
      await new Promise<void>((resolve) => queue.push(resolve))
      return release
    },
  }
}
