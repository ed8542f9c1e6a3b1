// Score a results.json of http-cache-tests with the suite's own result logic
// (lib/display.mjs determineTestResult, dependencies honoured) and print one line of
// JSON: {kind: {pass, fail, dependency, other}} for required, optimal and check.
// Usage: node score.mjs <package dir> <results.json>
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [pkg, resultsFile] = process.argv.slice(2)
const load = (rel) => import(pathToFileURL(path.join(pkg, rel)).href)
const display = await load('lib/display.mjs')
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const results = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))

const names = { '✅': 'pass', Y: 'pass', '⛔️': 'fail', '⚠️': 'fail', N: 'fail', '⚪️': 'dependency' }
const table = {}
const failed = []
for (const suite of tests) {
  for (const test of suite.tests) {
    const kind = test.kind || 'required'
    const symbol = display.determineTestResult(tests, test.id, results)[2]
    const outcome = names[symbol] || 'other'
    table[kind] = table[kind] || { pass: 0, fail: 0, dependency: 0, other: 0 }
    table[kind][outcome] += 1
    if (kind === 'required' && outcome !== 'pass') failed.push(`${test.id} (${outcome})`)
  }
}
console.log(JSON.stringify({ table, failed }))
