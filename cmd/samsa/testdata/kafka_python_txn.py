"""kafka-python reading a transactional topic, driven by txn_clients_test.go.

    /usr/bin/python3 kafka_python_txn.py HOST:PORT TOPIC

kafka-python 2.0.2 (Debian's python3-kafka) has no isolation_level
setting: KafkaConsumer rejects the keyword, every Fetch says
READ_UNCOMMITTED, and the records of control batches (transaction
markers) come out as ordinary records. The script reports whether
isolation_level='read_committed' is accepted, then reads partition 0 of
TOPIC from the beginning to its end offset with the default isolation
(and, where the keyword exists, with read_committed until 2 s pass
without records). Each record is printed with its raw key and value
bytes.
"""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaConfigurationError

addr, topic = sys.argv[1], sys.argv[2]
tp = TopicPartition(topic, 0)


def out(kind, **kw):
    kw["kind"] = kind
    print(json.dumps(kw, sort_keys=True), flush=True)


def consumer(**extra):
    return KafkaConsumer(bootstrap_servers=addr, client_id="itest-txn-reader",
                         enable_auto_commit=False, request_timeout_ms=30000,
                         fetch_max_wait_ms=100, **extra)


def read(mode, c, until_end):
    c.assign([tp])
    c.seek_to_beginning(tp)
    end = c.end_offsets([tp])[tp]
    out("end_offset", mode=mode, offset=end)
    deadline = time.time() + 20
    last = time.time()
    while time.time() < deadline:
        if until_end and c.position(tp) >= end:
            break
        if not until_end and time.time() - last > 2:
            break
        for recs in c.poll(timeout_ms=200).values():
            for r in recs:
                last = time.time()
                out("record", mode=mode, partition=r.partition, offset=r.offset,
                    key=list(r.key) if r.key is not None else None,
                    value_bytes=list(r.value) if r.value is not None else None)
    c.close()


try:
    committed = consumer(isolation_level="read_committed")
    out("isolation_level", ok=True)
except KafkaConfigurationError as e:
    committed = None
    out("isolation_level", ok=False, error=type(e).__name__, message=str(e))

read("default", consumer(), True)
if committed is not None:
    read("read_committed", committed, False)
out("done")
