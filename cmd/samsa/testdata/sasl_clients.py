"""SASL clients against samsa, driven by sasl_test.go.

    python3 sasl_clients.py confluent BOOTSTRAP PROTOCOL MECHANISM USER PASSWORD CAFILE TOPIC N
    python3 sasl_clients.py kafkapython BOOTSTRAP PROTOCOL MECHANISM USER PASSWORD CAFILE TOPIC N

Each produces N records "VALUE-I" (VALUE = the client's name) to
partition 0 of TOPIC, then reads partition 0 from the start until it has
N records of its own or 20 s pass, and prints one JSON line:
{"kind": "done", "produced": N, "read": [values...]} or
{"kind": "error", "error": "..."} (CAFILE "-" for none).
"""
import json
import sys
import time

mode, bootstrap, protocol, mechanism, user, password, cafile, topic, n = sys.argv[1:10]
n = int(n)
prefix = mode


def out(kind, **fields):
    print(json.dumps(dict(kind=kind, **fields)), flush=True)


def confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition
    conf = {
        "bootstrap.servers": bootstrap,
        "security.protocol": protocol,
        "sasl.mechanisms": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if cafile != "-":
        conf["ssl.ca.location"] = cafile
    errors = []
    p = Producer(dict(conf, **{"message.timeout.ms": 15000}))
    for i in range(n):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
    left = p.flush(20)
    if left or errors:
        out("error", error=f"produce: {left} left, errors {errors[:3]}")
        return
    c = Consumer(dict(conf, **{"group.id": "sasl-" + prefix, "enable.auto.commit": False}))
    c.assign([TopicPartition(topic, 0, 0)])
    read = []
    deadline = time.time() + 20
    while time.time() < deadline and len([v for v in read if v.startswith(prefix)]) < n:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            out("error", error="consume: " + str(m.error()))
            return
        read.append(m.value().decode())
    c.close()
    out("done", produced=n, read=read)


def kafkapython():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    conf = dict(bootstrap_servers=bootstrap, security_protocol=protocol, sasl_mechanism=mechanism,
                sasl_plain_username=user, sasl_plain_password=password, api_version_auto_timeout_ms=10000)
    if cafile != "-":
        conf["ssl_cafile"] = cafile
        conf["ssl_check_hostname"] = False
    p = KafkaProducer(**conf)
    for i in range(n):
        p.send(topic, value=f"{prefix}-{i}".encode(), partition=0).get(timeout=15)
    p.close()
    c = KafkaConsumer(**conf, enable_auto_commit=False, consumer_timeout_ms=1000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek(tp, 0)
    read = []
    deadline = time.time() + 20
    while time.time() < deadline and len([v for v in read if v.startswith(prefix)]) < n:
        for recs in c.poll(timeout_ms=500).values():
            read.extend(r.value.decode() for r in recs)
    c.close()
    out("done", produced=n, read=read)


try:
    {"confluent": confluent, "kafkapython": kafkapython}[mode]()
except Exception as e:  # the test shows what went wrong
    out("error", error=f"{type(e).__name__}: {e}")
