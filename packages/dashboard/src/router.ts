// Views by the URL's fragment (`#rules`): a reload, the back button and a shared link land on the
// same view, and the server sees one page.
export const VIEWS = ['detections', 'rules', 'webhooks'] as const
export type View = (typeof VIEWS)[number]

/**
 * The view a fragment names; none names the first view. Any other fragment (the skip link's
 * `#main`) is not a view: null, and the current view stays.
 */
export function viewFromHash(hash: string): View | null {
  const name = hash.replace(/^#\/?/, '').split(/[/?]/)[0] ?? ''
  if (name === '') return 'detections'
  return (VIEWS as readonly string[]).includes(name) ? (name as View) : null
}
