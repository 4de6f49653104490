"""kafka-python against samsa, driven by kafkapython_test.go.

    /usr/bin/python3 kafka_python_client.py HOST:PORT TOPIC N

Prints one JSON object per line; the Go test checks them. No consumer group:
the consumer assigns partitions and seeks.
"""
import json
import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

addr, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
PARTITIONS = 3


def out(kind, **kw):
    kw["kind"] = kind
    print(json.dumps(kw, sort_keys=True), flush=True)


out("version", kafka_python=kafka.__version__)

admin = KafkaAdminClient(bootstrap_servers=addr, client_id="itest-admin", request_timeout_ms=10000)
admin.create_topics([NewTopic(topic, PARTITIONS, 1,
                              topic_configs={"retention.ms": "3600000", "max.message.bytes": "500000"})])
try:
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    out("create_again", error=None)
except TopicAlreadyExistsError as e:
    out("create_again", error=type(e).__name__)
configs = {}
for resp in admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]):
    for res in resp.resources:
        # (error_code, error_message, resource_type, resource_name, entries)
        if res[0] != 0:
            out("describe_configs_error", code=res[0])
        for entry in res[4]:
            configs[entry[0]] = entry[1]
out("configs", configs={k: configs.get(k) for k in ("retention.ms", "max.message.bytes", "cleanup.policy")})
admin.close()

# acks=all, keys, values, headers, explicit partitions; then gzip with acks=1.
producer = KafkaProducer(bootstrap_servers=addr, acks="all", linger_ms=5, request_timeout_ms=10000)
out("producer_api_version", version=list(producer.config["api_version"]))
sent = []
for i in range(n):
    f = producer.send(topic, key=b"key-%d" % i, value=b"value-%d" % i, partition=i % PARTITIONS,
                      headers=[("idx", str(i).encode()), ("empty", b"")])
    sent.append((i, f))
producer.flush(timeout=30)
for i, f in sent:
    md = f.get(timeout=30)
    out("acked", i=i, partition=md.partition, offset=md.offset)
producer.close(timeout=10)

# Every codec, one producer each in turn (its lz4 frames declare their
# content size, which the broker's lz4 path steps over).
futs = []
for codec in ("gzip", "snappy", "lz4", "zstd"):
    cp = KafkaProducer(bootstrap_servers=addr, acks=1, compression_type=codec, linger_ms=20)
    fs = [cp.send(topic, key=None, value=b"%s-%d" % (codec.encode(), i), partition=0) for i in range(5)]
    cp.flush(timeout=30)
    for i, f in enumerate(fs):
        md = f.get(timeout=30)
        out("acked_compressed", i=i, codec=codec, partition=md.partition, offset=md.offset)
    cp.close(timeout=10)
    futs += fs

consumer = KafkaConsumer(bootstrap_servers=addr, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=15000)
tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
consumer.assign(tps)
consumer.seek_to_beginning()
want = n + len(futs)
got = 0
deadline = time.time() + 30
while got < want and time.time() < deadline:
    for tp, msgs in consumer.poll(timeout_ms=500).items():
        for m in msgs:
            got += 1
            out("record", partition=m.partition, offset=m.offset,
                key=None if m.key is None else m.key.decode(), value=m.value.decode(),
                headers=[[k, v.decode()] for k, v in (m.headers or [])])
out("end_offsets", offsets={str(tp.partition): o for tp, o in consumer.end_offsets(tps).items()})
out("beginning_offsets", offsets={str(tp.partition): o for tp, o in consumer.beginning_offsets(tps).items()})
ts = consumer.offsets_for_times({tps[1]: 0})
out("offsets_for_times", partition=1, offset=ts[tps[1]].offset if ts[tps[1]] else None)

# Seek into the middle of partition 2 and read one record.
consumer.seek(tps[2], 4)
m = None
deadline = time.time() + 15
while m is None and time.time() < deadline:
    for tp, msgs in consumer.poll(timeout_ms=500, max_records=1).items():
        m = msgs[0]
out("seek", partition=m.partition if m else None, offset=m.offset if m else None,
    value=m.value.decode() if m else None)
consumer.close(autocommit=False)
out("done")
