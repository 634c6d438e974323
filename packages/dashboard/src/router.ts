// Views by the URL's fragment (`#rules`): a reload, the back button and a shared link land on the
// same view, and the server sees one page.
export const VIEWS = ['detections', 'rules', 'webhooks'] as const
export type View = (typeof VIEWS)[number]

export function viewFromHash(hash: string): View {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0] ?? ''
  return (VIEWS as readonly string[]).includes(name) ? (name as View) : 'detections'
}
