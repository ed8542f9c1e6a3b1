// The gateway dashboard: one SSE stream of snapshots (fetch + ReadableStream, so the admin
// token travels in the Authorization header, never in a URL), drawn as tables and SVG
// sparklines. No libraries, no build step.
'use strict'

const token = new URLSearchParams(location.hash.slice(1)).get('token') || ''
const $ = (id) => document.getElementById(id)
const SVG = 'http://www.w3.org/2000/svg'

function fmt (value, digits = 1) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits)
}

function ms (seconds) {
  return seconds === null || seconds === undefined ? '–' : (seconds * 1000).toFixed(1) + ' ms'
}

function spark (points, field, cls) {
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('class', 'spark')
  svg.setAttribute('viewBox', '0 0 160 32')
  svg.setAttribute('preserveAspectRatio', 'none')
  const values = points.map(p => p[field] || 0)
  const max = Math.max(1e-9, ...values)
  const step = values.length > 1 ? 160 / (values.length - 1) : 0
  const line = document.createElementNS(SVG, 'polyline')
  line.setAttribute('points', values.map((v, i) => `${(i * step).toFixed(1)},${(31 - (v / max) * 29).toFixed(1)}`).join(' '))
  if (cls) line.setAttribute('class', cls)
  svg.appendChild(line)
  svg.dataset.last = values.length ? String(values[values.length - 1]) : '0'
  svg.dataset.sum = String(values.reduce((a, b) => a + b, 0))
  return svg
}

function cell (row, content) {
  const td = document.createElement('td')
  if (content instanceof Node) td.appendChild(content); else td.textContent = content
  row.appendChild(td)
  return td
}

function render (data) {
  $('status').textContent = data.status
  $('status').className = 'pill ' + (data.status === 'serving' ? 'ok' : 'bad')
  $('updated').textContent = 'updated ' + new Date(data.now * 1000).toLocaleTimeString()
  const totalRps = data.routes.reduce((a, r) => a + r.rps, 0)
  $('total-rps').textContent = fmt(totalRps)
  const weighted = data.routes.reduce((a, r) => a + r.error_ratio * r.rps, 0)
  $('total-errors').textContent = totalRps ? (100 * weighted / totalRps).toFixed(2) + ' %' : '0 %'
  $('cache-ratio').textContent = data.cache ? (100 * data.cache.hit_ratio).toFixed(1) + ' %' : 'off'
  $('rejections').textContent = String(data.rejections)

  const body = $('routes').querySelector('tbody')
  body.replaceChildren()
  for (const route of data.routes) {
    const row = document.createElement('tr')
    row.dataset.route = route.name
    cell(row, route.name + (route.cache ? ' ⚡' : ''))
    cell(row, route.cluster)
    cell(row, fmt(route.rps)).className = 'rps'
    cell(row, (100 * route.error_ratio).toFixed(1) + ' %')
    cell(row, ms(route.p99))
    cell(row, String(route.rejections))
    cell(row, spark(route.series, 'rps')).className = 'chart-rps'
    cell(row, spark(route.series, 'p99', 'p99')).className = 'chart-p99'
    body.appendChild(row)
  }

  const clusters = $('clusters')
  clusters.replaceChildren()
  for (const cluster of data.clusters) {
    const box = document.createElement('div')
    box.className = 'cluster'
    box.dataset.cluster = cluster.name
    const title = document.createElement('h3')
    title.textContent = `${cluster.name} (${cluster.balancer})`
    box.appendChild(title)
    for (const inst of cluster.instances) {
      const span = document.createElement('span')
      const state = inst.state || 'unknown'
      span.className = 'instance state-' + state
      span.dataset.instance = inst.id
      span.dataset.state = state
      const dot = document.createElement('span')
      dot.className = 'dot'
      span.appendChild(dot)
      const breaker = inst.breaker && inst.breaker !== 'closed' ? `, breaker ${inst.breaker}` : ''
      span.appendChild(document.createTextNode(`${inst.id}: ${state}${breaker}, ${inst.in_flight || 0} in flight`))
      box.appendChild(span)
    }
    clusters.appendChild(box)
  }
}

async function stream () {
  const response = await fetch('/dashboard/events?interval=0.5', {
    headers: { Authorization: 'Bearer ' + token }
  })
  if (response.status === 401) {
    $('auth').hidden = false
    $('status').textContent = 'token required'
    return false
  }
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return true
    buffer += decoder.decode(value, { stream: true })
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = event.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
      if (data) render(JSON.parse(data))
    }
  }
}

async function run () {
  for (;;) {
    let again = true
    try {
      again = await stream()
    } catch (err) {
      $('status').textContent = 'reconnecting…'
      $('status').className = 'pill bad'
    }
    if (!again) return
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
}

run()
