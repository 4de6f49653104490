"""confluent-kafka (librdkafka) behaviour that depends on the broker's
exact answers, driven by confluent_test.go.

    /usr/bin/python3 confluent_client.py recorderrors HOST:PORT TOPIC BATCHED
    /usr/bin/python3 confluent_client.py asynccommits HOST:PORT TOPIC GROUP N
    /usr/bin/python3 confluent_client.py flood HOST:PORT TOPIC N SIZE

recorderrors: produces 20 records to partition 0 of TOPIC (a compacted
topic), every fifth one (0, 5, 10, 15) without a key. BATCHED=1 sends
them as one batch: the broker refuses it and names the keyless records
(KIP-467), which librdkafka 2.4 and later fail with INVALID_RECORD and
the others with _INVALID_DIFFERENT_RECORD (older ones fail all with
INVALID_RECORD). BATCHED=0 sends one record per batch (only the keyless
ones fail). Prints the delivery reports' error names counted, and
librdkafka's version.

asynccommits: a consumer of GROUP assigned partition 0 of TOPIC reads N
records and commits each one's next offset asynchronously at once (many
OffsetCommit requests in flight), waits for every commit callback, then
reads the group's committed offset back (OffsetFetch).

flood: a non-idempotent producer (librdkafka lets it have a million
requests in flight) sends N records of SIZE bytes to TOPIC, acks=all, as
fast as librdkafka takes them, and waits for every delivery report.
Prints the reports' error names counted.

Prints one JSON object; the Go test judges it.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, libversion


def recorderrors(addr, topic, batched):
    conf = {"bootstrap.servers": addr, "linger.ms": 200 if batched else 0, "acks": "all"}
    if not batched:
        conf["batch.num.messages"] = 1
    p = Producer(conf)
    # The partition's leader known first: records produced before it is
    # are moved to the partition one at a time when it becomes known, and
    # once flush() has begun (linger no longer waits) librdkafka sends
    # each in a request of its own, as it did under a loaded CI machine.
    p.list_topics(topic, timeout=10)
    counts = {}

    def dr(err, msg):
        name = err.name() if err else "OK"
        counts[name] = counts.get(name, 0) + 1

    for i in range(20):
        key = None if i % 5 == 0 else ("k%d" % i).encode()
        p.produce(topic, value=("v%d" % i).encode(), key=key, partition=0, on_delivery=dr)
    left = p.flush(30)
    print(json.dumps({"kind": "recorderrors", "counts": counts, "undelivered": left,
                      "librdkafka": libversion()[1]}, sort_keys=True), flush=True)


def asynccommits(addr, topic, group, n):
    done = {"callbacks": 0, "errors": [], "highest": -1}

    def on_commit(err, parts):
        done["callbacks"] += 1
        if err:
            done["errors"].append(str(err))
        for tp in parts:
            if tp.error:
                done["errors"].append(str(tp.error))
            done["highest"] = max(done["highest"], tp.offset)

    c = Consumer({"bootstrap.servers": addr, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "on_commit": on_commit})
    c.assign([TopicPartition(topic, 0, 0)])
    read = 0
    deadline = time.time() + 30
    while read < n and time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        read += 1
        c.commit(message=m, asynchronous=True)
    while done["callbacks"] < read and time.time() < deadline:
        c.poll(0.2)
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    c.close()
    print(json.dumps({"kind": "asynccommits", "read": read, "callbacks": done["callbacks"], "errors": done["errors"],
                      "highest_acked": done["highest"], "committed": committed}, sort_keys=True), flush=True)


def flood(addr, topic, n, size):
    p = Producer({"bootstrap.servers": addr, "acks": "all", "linger.ms": 0, "batch.size": 1000000,
                  "message.max.bytes": 2000000, "queue.buffering.max.kbytes": 2097151})
    counts = {}

    def dr(err, msg):
        name = err.name() if err else "OK"
        counts[name] = counts.get(name, 0) + 1

    value = b"f" * size
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value, partition=0, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    left = p.flush(120)
    print(json.dumps({"kind": "flood", "counts": counts, "undelivered": left}, sort_keys=True), flush=True)


if __name__ == "__main__":
    mode, addr = sys.argv[1], sys.argv[2]
    if mode == "recorderrors":
        recorderrors(addr, sys.argv[3], sys.argv[4] == "1")
    elif mode == "asynccommits":
        asynccommits(addr, sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif mode == "flood":
        flood(addr, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)
