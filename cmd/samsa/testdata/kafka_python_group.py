"""kafka-python's group consumer against samsa, driven by groups_test.go.

    /usr/bin/python3 kafka_python_group.py HOST:PORT TOPIC GROUP WANT

Joins GROUP (subscribing to TOPIC, auto.offset.reset=earliest, manual
commits), reads until it has WANT records and then one more second
without new ones, commits synchronously and leaves. Prints one JSON
object per line: each record, then the committed offsets.
"""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition

addr, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def out(kind, **kw):
    kw["kind"] = kind
    print(json.dumps(kw, sort_keys=True), flush=True)


c = KafkaConsumer(topic, bootstrap_servers=addr, group_id=group, client_id="itest-group",
                  auto_offset_reset="earliest", enable_auto_commit=False,
                  session_timeout_ms=10000, heartbeat_interval_ms=1000,
                  request_timeout_ms=30000, consumer_timeout_ms=1000)
got = 0
deadline = time.time() + 40
while time.time() < deadline:
    batch = c.poll(timeout_ms=500)
    for tp, recs in batch.items():
        for r in recs:
            got += 1
            out("record", partition=r.partition, offset=r.offset, key=r.key.decode())
    if got >= want and not batch and c.assignment():
        break
c.commit()
offsets = {}
for p in c.partitions_for_topic(topic):
    o = c.committed(TopicPartition(topic, p))
    offsets[str(p)] = -1 if o is None else o
out("committed", offsets=offsets)
c.close()
