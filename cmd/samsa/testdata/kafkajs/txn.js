// kafkajs transactions against samsa, driven by txn_clients_test.go:
//
//   node txn.js flow HOST:PORT OUT IN GROUP TXNID N NIN
//   node txn.js fence HOST:PORT OUT TXNID N
//
// flow: a transactional producer (idempotent, one request in flight) commits N
// records "commit-I" to OUT and aborts N "abort-I"; a group consumer of IN
// (GROUP, no auto-commit) reads NIN records, and one transaction writes
// "xf-VALUE" for each to OUT, sends the next offsets to GROUP with
// txn.sendOffsets and commits; a last transaction writes "late-0" and
// sends lower offsets for GROUP, then aborts: neither may show.
//
// fence: producer A (TXNID) writes N records "zombie-I" in a transaction
// it leaves open; producer B with the same TXNID begins a transaction
// (InitProducerId), which must fence A; A's commit must fail; B commits N records "b-I".
//
// Prints one JSON object per line; kafkajs's own log goes to stderr.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const mode = process.argv[2]
const addr = process.argv[3]

const out = (kind, fields = {}) => process.stdout.write(JSON.stringify({ kind, ...fields }) + '\n')
const values = (prefix, count) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`)
const records = vs => vs.map(v => ({ key: v, value: v }))

// step runs one call and prints its outcome; it returns whether it worked.
async function step (what, fn) {
  try {
    await fn()
  } catch (e) {
    out(what, { ok: false, error: e.type || e.name, message: e.message })
    return false
  }
  out(what, { ok: true })
  return true
}

const kafka = new Kafka({
  clientId: 'itest-kafkajs',
  brokers: [addr],
  connectionTimeout: 3000,
  requestTimeout: 15000,
  retry: { retries: 8, initialRetryTime: 100 },
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, log }) =>
    process.stderr.write(`kafkajs ${level} ${namespace}: ${JSON.stringify(log)}\n`)
})

async function flow (outTopic, inTopic, group, txnId, n, nin) {
  const producer = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000 })
  if (!await step('connect', () => producer.connect())) return

  let txn
  if (!await step('begin_commit', async () => { txn = await producer.transaction() })) return
  await step('send_commit', () => txn.send({ topic: outTopic, messages: records(values('commit', n)) }))
  await step('commit', () => txn.commit())

  if (!await step('begin_abort', async () => { txn = await producer.transaction() })) return
  await step('send_abort', () => txn.send({ topic: outTopic, messages: records(values('abort', n)) }))
  await step('abort', () => txn.abort())

  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000, readUncommitted: false, maxWaitTimeInMs: 200 })
  const msgs = []
  if (!await step('consumer', async () => {
    await consumer.connect()
    await consumer.subscribe({ topic: inTopic, fromBeginning: true })
    await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { msgs.push({ partition, message }) } })
  })) return
  const deadline = Date.now() + 20000
  while (msgs.length < nin && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  out('consumed', { count: msgs.length })
  if (msgs.length < nin) { await consumer.disconnect(); return }

  const next = {}
  for (const { partition, message } of msgs) next[partition] = Number(message.offset) + 1
  const offsetsOf = o => [{ topic: inTopic, partitions: Object.entries(o).map(([p, off]) => ({ partition: Number(p), offset: String(off) })) }]
  if (!await step('begin_ctp', async () => { txn = await producer.transaction() })) return
  await step('send_ctp', () => txn.send({ topic: outTopic, messages: records(msgs.map(m => 'xf-' + m.message.value.toString())) }))
  out('positions', { offsets: next, topics: [inTopic] })
  await step('send_offsets', () => txn.sendOffsets({ consumerGroupId: group, topics: offsetsOf(next) }))
  await step('commit_ctp', () => txn.commit())

  const lower = {}
  for (const p of Object.keys(next)) lower[p] = 1
  if (!await step('begin_late', async () => { txn = await producer.transaction() })) return
  await step('send_late', () => txn.send({ topic: outTopic, messages: records(['late-0']) }))
  await step('send_offsets_late', () => txn.sendOffsets({ consumerGroupId: group, topics: offsetsOf(lower) }))
  await step('abort_late', () => txn.abort())

  await consumer.disconnect()
  await producer.disconnect()
}

async function fence (topic, txnId, n) {
  const producer = () => kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000 })
  const a = producer()
  const b = producer()
  let ta, tb
  if (!await step('a_connect', () => a.connect())) return
  if (!await step('a_begin', async () => { ta = await a.transaction() })) return
  await step('a_send', () => ta.send({ topic, messages: records(values('zombie', n)) }))
  // connect() asks for an idempotent producer id only; the first
  // transaction() sends InitProducerId with the transactional id.
  if (!await step('b_connect', () => b.connect())) return
  if (!await step('b_begin', async () => { tb = await b.transaction() })) return
  await step('a_commit', () => ta.commit())
  await step('b_send', () => tb.send({ topic, messages: records(values('b', n)) }))
  await step('b_commit', () => tb.commit())
  await a.disconnect()
  await b.disconnect()
}

async function main () {
  const args = process.argv.slice(4)
  if (mode === 'flow') {
    const [outTopic, inTopic, group, txnId, n, nin] = args
    await flow(outTopic, inTopic, group, txnId, Number(n), Number(nin))
  } else if (mode === 'fence') {
    const [topic, txnId, n] = args
    await fence(topic, txnId, Number(n))
  } else {
    throw new Error('unknown mode ' + mode)
  }
}

main().then(
  () => out('done'),
  e => { out('crash', { error: e.name, message: e.message }); process.exitCode = 1 }
)
