// kafkajs with SASL against samsa, driven by sasl_test.go:
//
//   node sasl.js HOST:PORT MECHANISM USER PASSWORD TOPIC N
//
// MECHANISM is plain, scram-sha-256 or scram-sha-512 (kafkajs's names).
// Produces N records "kafkajs-I" to partition 0 of TOPIC and reads
// partition 0 from the start until it has them (20 s at most). Prints one
// JSON line: {"kind":"done","produced":N,"read":[...]} or
// {"kind":"error","error":"...","type":"..."}.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [addr, mechanism, username, password, topic, nArg] = process.argv.slice(2)
const n = Number(nArg)
const out = (kind, fields = {}) => process.stdout.write(JSON.stringify({ kind, ...fields }) + '\n')

async function main () {
  const kafka = new Kafka({
    clientId: 'samsa-sasl-test',
    brokers: [addr],
    sasl: { mechanism, username, password },
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 }
  })
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({
    topic,
    messages: Array.from({ length: n }, (_, i) => ({ value: `kafkajs-${i}`, partition: 0 }))
  })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: 'sasl-kafkajs' })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const read = []
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 20000)
    consumer.run({
      eachMessage: async ({ message }) => {
        read.push(message.value.toString())
        if (read.filter(v => v.startsWith('kafkajs-')).length >= n) {
          clearTimeout(timer)
          resolve()
        }
      }
    })
  })
  await consumer.disconnect()
  out('done', { produced: n, read })
}

main().then(() => process.exit(0), err => {
  out('error', { error: String(err && err.message), type: err && err.type })
  process.exit(0)
})
