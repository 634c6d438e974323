// Detections and alerts per minute over the last hour, from GET /stats/timeseries (polled), with
// the current minute bumped by each live alert in between polls.
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { type ApiClient, ApiError } from './api-client.js'
import { byId, cell, show } from './dom.js'
import type { Alert } from './feed-state.js'
import { axisCount } from './format.js'

interface Timeseries {
  bucket: string
  from: string
  to: string
  points: { start: string; total: number; suspicious: number }[]
}

const BUCKET_MS = 60_000

export function createTimeseriesChart(api: ApiClient) {
  const container = byId('ts-chart')
  const status = byId('ts-status')
  const tableBody = byId<HTMLTableElement>('ts-table').tBodies[0]!
  let chart: uPlot | null = null
  let data: [number[], number[], number[]] = [[], [], []]
  let inFlight = false
  /** Alerts detected before this were already in the last answer (the feed's backfill replays some). */
  let countedUntil = Number.POSITIVE_INFINITY

  function ensureChart(): uPlot {
    if (chart) return chart
    const styles = getComputedStyle(document.documentElement)
    const color = (name: string, fallback: string) => styles.getPropertyValue(name).trim() || fallback
    chart = new uPlot(
      {
        width: Math.max(280, container.clientWidth),
        height: 220,
        scales: { x: { time: true } },
        axes: [
          { stroke: color('--muted', '#666'), grid: { stroke: color('--grid', '#8883') } },
          {
            stroke: color('--muted', '#666'),
            grid: { stroke: color('--grid', '#8883') },
            // 1.2K, 340K, 1.5M: a count keeps its axis label whole at any size.
            values: (_chart, splits) => splits.map(axisCount),
            size: 50,
          },
        ],
        series: [
          {},
          { label: 'Detections', stroke: color('--accent', '#2563eb'), width: 2, points: { show: false } },
          {
            label: 'Alerts',
            stroke: color('--danger', '#dc2626'),
            fill: color('--danger-fill', '#dc262622'),
            width: 2,
            points: { show: false },
          },
        ],
        legend: { live: true },
      },
      data,
      container,
    )
    new ResizeObserver(() =>
      chart?.setSize({ width: Math.max(280, container.clientWidth), height: 220 }),
    ).observe(container)
    return chart
  }

  function render(): void {
    ensureChart().setData(data)
    const rows: HTMLTableRowElement[] = []
    // Newest first in the table: the minute that is moving is the one people look for.
    for (let i = data[0].length - 1; i >= 0; i--) {
      const tr = document.createElement('tr')
      const minute = new Date(data[0][i]! * 1000)
      tr.append(
        cell('th', minute.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })),
        cell('td', String(data[1][i]), 'num'),
        cell('td', String(data[2][i]), 'num'),
      )
      tr.dataset.start = minute.toISOString()
      rows.push(tr)
    }
    tableBody.replaceChildren(...rows)
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0)
    container.setAttribute(
      'aria-label',
      `Line chart: ${sum(data[1])} detections and ${sum(data[2])} alerts in the last hour`,
    )
  }

  async function refresh(): Promise<void> {
    if (inFlight) return
    inFlight = true
    try {
      const asked = Date.now()
      const series = await api.get<Timeseries>('/stats/timeseries', { bucket: 'minute' })
      countedUntil = asked
      data = [
        series.points.map((p) => Date.parse(p.start) / 1000),
        series.points.map((p) => p.total),
        series.points.map((p) => p.suspicious),
      ]
      show(status, null)
      render()
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        show(status, 'This API does not offer GET /stats/timeseries.')
      } else if (!(err instanceof ApiError && err.status === 401)) {
        show(status, `Could not load the time series: ${(err as Error).message}`)
      }
    } finally {
      inFlight = false
    }
  }

  /** A live alert is a detection too: count it in its minute until the next poll says exactly. */
  function bump(alert: Alert): void {
    const last = data[0].length - 1
    if (last < 0) return
    const at = Date.parse(alert.detectedAt)
    const start = data[0][last]! * 1000
    if (at < countedUntil || at < start || at >= start + BUCKET_MS) return
    data[1][last]! += 1
    data[2][last]! += 1
    render()
  }

  return {
    refresh,
    bump,
    reset(): void {
      data = [[], [], []]
      countedUntil = Number.POSITIVE_INFINITY
      chart?.setData(data)
      tableBody.replaceChildren()
    },
  }
}
