// The page's composition root: two views (sign-in, dashboard) over one session. Any 401 and any
// `token-expired` from the stream end in signOut(message).
import './style.css'
import { type ConnectionState, createAlertsFeed } from './alerts-feed.js'
import { type ApiClient, ApiError, createApiClient } from './api-client.js'
import { createDetectionsTable } from './detections-table.js'
import { byId, show } from './dom.js'
import { clearSession, loadSession, type Session, saveSession } from './session.js'
import { createStatsPanel } from './stats-panel.js'
import { createTimeseriesChart } from './timeseries-chart.js'

const REFRESH_MS = 5_000

const authView = byId('auth-view')
const dashboardView = byId('dashboard-view')
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
const feed = createAlertsFeed({
  api,
  token: () => session?.token ?? null,
  onState: setConnection,
  onExpired: (message) => signOut(message),
  onAlert: (alert) => timeseries.bump(alert),
})

function showDashboard(current: Session): void {
  authView.hidden = true
  dashboardView.hidden = false
  sessionBar.hidden = false
  userName.textContent = current.username
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
  setConnection('signed-out')
  dashboardView.hidden = true
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

function busy(form: HTMLFormElement, on: boolean): void {
  for (const button of form.querySelectorAll('button')) button.disabled = on
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
