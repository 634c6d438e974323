// Saves text the page already holds as a file. A Blob URL, not a `data:` one: the CSP's
// `img-src data:` is for images only, and a Blob keeps a large watch list out of a URL string.
export function saveText(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const link = document.createElement('a')
  link.href = url
  link.download = fileName
  link.hidden = true
  document.body.append(link)
  link.click()
  link.remove()
  // The download has started from the URL by the next task; revoking at once can cancel it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
