// The page's composition root: sign-in, then three views (alerts and detections, rules, webhooks)
// chosen by the URL's fragment, over one session. Any 401 and any `token-expired` from the stream
// end in signOut(message). The live feed keeps running on every view: its badge in the header says
// so, and coming back shows what arrived meanwhile.
import './style.css'
import { type ConnectionState, createAlertsFeed } from './alerts-feed.js'
import { type ApiClient, ApiError, createApiClient } from './api-client.js'
import { createDetectionsTable } from './detections-table.js'
import { busy, byId, show } from './dom.js'
import { VIEWS, type View, viewFromHash } from './router.js'
import { createRulesView } from './rules-view.js'
import { clearSession, loadSession, type Session, saveSession } from './session.js'
import { createStatsPanel } from './stats-panel.js'
import { createTimeseriesChart } from './timeseries-chart.js'
import { createWebhooksView } from './webhooks-view.js'

const REFRESH_MS = 5_000

const authView = byId('auth-view')
const dashboardView = byId('dashboard-view')
const viewsNav = byId('views-nav')
const viewElements: Record<View, HTMLElement> = {
  detections: dashboardView,
  rules: byId('rules-view'),
  webhooks: byId('webhooks-view'),
}
const viewHeadings: Record<View, string> = {
  detections: 'feed-title',
  rules: 'rules-title',
  webhooks: 'webhooks-title',
}
const sessionBar = byId('session-bar')
const authMessage = byId('auth-message')
const connState = byId('conn-state')
const userName = byId('user-name')
const signInForm = byId<HTMLFormElement>('sign-in-form')
const signUpForm = byId<HTMLFormElement>('sign-up-form')

let session: Session | null = loadSession()
let timer: ReturnType<typeof setInterval> | undefined

const api: ApiClient = createApiClient({
  token: () => session?.token ?? null,
  onUnauthorized: (message) => signOut(message),
})

const labels: Record<ConnectionState, string> = {
  live: 'live',
  connecting: 'connecting…',
  reconnecting: 'reconnecting…',
  'signed-out': 'signed out',
}
function setConnection(state: ConnectionState): void {
  connState.dataset.state = state
  connState.textContent = labels[state]
}

const stats = createStatsPanel(api)
const timeseries = createTimeseriesChart(api)
const detections = createDetectionsTable(api)
const rules = createRulesView(api)
const webhooks = createWebhooksView(api)
let currentView: View | null = null
const feed = createAlertsFeed({
  api,
  token: () => session?.token ?? null,
  onState: setConnection,
  onExpired: (message) => signOut(message),
  onAlert: (alert) => timeseries.bump(alert),
})

/** Shows the view the fragment names; `focus` moves the keyboard to its heading (a tab was chosen). */
function showView(view: View, focus: boolean): void {
  const previous = currentView
  currentView = view
  for (const name of VIEWS) viewElements[name].hidden = name !== view
  for (const link of viewsNav.querySelectorAll<HTMLAnchorElement>('a[data-view]')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  if (previous === 'webhooks' && view !== 'webhooks') webhooks.leave()
  if (view === 'rules') void rules.load()
  if (view === 'webhooks') webhooks.enter()
  if (focus) byId(viewHeadings[view]).focus()
}

window.addEventListener('hashchange', () => {
  const view = viewFromHash(location.hash)
  if (session && view) showView(view, true)
})

function showDashboard(current: Session): void {
  authView.hidden = true
  sessionBar.hidden = false
  viewsNav.hidden = false
  userName.textContent = current.username
  showView(viewFromHash(location.hash) ?? currentView ?? 'detections', false)
  feed.start()
  void stats.refresh()
  void timeseries.refresh()
  void detections.load()
  clearInterval(timer)
  timer = setInterval(() => {
    void stats.refresh()
    void timeseries.refresh()
  }, REFRESH_MS)
  byId('main').focus()
}

function signOut(message: string | null): void {
  const wasSignedIn = session !== null
  session = null
  clearSession()
  clearInterval(timer)
  feed.reset()
  stats.reset()
  timeseries.reset()
  detections.reset()
  rules.reset()
  webhooks.reset()
  currentView = null
  setConnection('signed-out')
  for (const name of VIEWS) viewElements[name].hidden = true
  viewsNav.hidden = true
  sessionBar.hidden = true
  authView.hidden = false
  show(authMessage, message)
  if (wasSignedIn) byId<HTMLInputElement>('sign-in-username').focus()
}

async function signIn(username: string, password: string): Promise<void> {
  const token = await api.postPublic<{ access_token: string; expires_in: number }>('/auth/token', {
    username,
    password,
  })
  session = { token: token.access_token, username, expiresAt: Date.now() + token.expires_in * 1000 }
  saveSession(session)
  show(authMessage, null)
  signInForm.reset()
  signUpForm.reset()
  showDashboard(session)
}

function credentials(form: HTMLFormElement): { username: string; password: string } {
  const data = new FormData(form)
  return { username: String(data.get('username') ?? '').trim(), password: String(data.get('password') ?? '') }
}

signInForm.addEventListener('submit', async (event) => {
  event.preventDefault()
  const { username, password } = credentials(signInForm)
  busy(signInForm, true)
  try {
    await signIn(username, password)
  } catch (err) {
    show(
      authMessage,
      err instanceof ApiError && err.status === 401
        ? 'Wrong username or password.'
        : String((err as Error).message),
    )
  } finally {
    busy(signInForm, false)
  }
})

signUpForm.addEventListener('submit', async (event) => {
  event.preventDefault()
  const { username, password } = credentials(signUpForm)
  busy(signUpForm, true)
  try {
    await api.postPublic('/users', { username, password })
    await signIn(username, password)
  } catch (err) {
    show(
      authMessage,
      err instanceof ApiError && err.status === 409 ? 'That username is taken.' : (err as Error).message,
    )
  } finally {
    busy(signUpForm, false)
  }
})

byId('sign-out').addEventListener('click', () => signOut('Signed out.'))

if (session) showDashboard(session)
else signOut(null)
