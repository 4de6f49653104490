"""confluent-kafka (librdkafka) transactions against samsa, driven by
txn_clients_test.go.

    /usr/bin/python3 confluent_txn.py flow HOST:PORT OUT IN GROUP TXNID N NIN
    /usr/bin/python3 confluent_txn.py fence HOST:PORT OUT TXNID N

flow: init_transactions; a committed transaction of N records
("commit-I") to OUT; an aborted one of N ("abort-I"); then
consume-transform-produce: a group consumer of IN (GROUP, manual commits)
reads NIN records, and one transaction writes "xf-VALUE" for each to OUT
and sends the consumer's positions with send_offsets_to_transaction,
then commits.

fence: producer A (TXNID) writes N records ("zombie-I") in a transaction
it leaves open; producer B with the same TXNID runs init_transactions,
which must fence A; A's commit_transaction must then fail; B commits N
records ("b-I").

Prints one JSON object per line; the Go test judges them. Errors of
librdkafka calls are printed, not raised, so that the test can show them.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

T = 20  # seconds, for each blocking librdkafka call


def out(kind, **kw):
    kw["kind"] = kind
    print(json.dumps(kw, sort_keys=True), flush=True)


def err_fields(e):
    """The KafkaError inside a KafkaException, as JSON fields."""
    ke = e.args[0] if e.args else None
    if ke is None or not hasattr(ke, "name"):
        return {"error": repr(e)}
    return {"error": ke.name(), "message": ke.str(), "fatal": ke.fatal(),
            "retriable": ke.retriable(), "abortable": ke.txn_requires_abort()}


def producer(addr, txnid, name):
    errors = []

    def on_error(e):  # fatal errors and the like, outside any call
        errors.append(e)
        out("producer_error", producer=name, error=e.name(), message=e.str(), fatal=e.fatal())

    return Producer({
        "bootstrap.servers": addr,
        "client.id": "itest-confluent-" + name,
        "transactional.id": txnid,
        "transaction.timeout.ms": 10000,
        "message.timeout.ms": 10000,
        "enable.idempotence": True,
        "linger.ms": 5,
        "error_cb": on_error,
    })


def produce(p, topic, values, name):
    """Produces values and waits for every delivery report."""
    def report(err, msg):
        if err is not None:
            out("delivery_error", producer=name, value=msg.value().decode(), error=err.name())
        else:
            out("delivered", producer=name, value=msg.value().decode(),
                partition=msg.partition(), offset=msg.offset())

    for v in values:
        p.produce(topic, key=v.encode(), value=v.encode(), on_delivery=report)
    left = p.flush(T)
    if left:
        out("flush_timeout", producer=name, left=left)


def step(what, fn):
    """Runs one transactional call; prints its outcome; True if it worked."""
    try:
        fn()
    except KafkaException as e:
        out(what, ok=False, **err_fields(e))
        return False
    out(what, ok=True)
    return True


def flow(addr, out_topic, in_topic, group, txnid, n, nin):
    p = producer(addr, txnid, "p")
    if not step("init", lambda: p.init_transactions(T)):
        return
    step("begin_commit", p.begin_transaction)
    produce(p, out_topic, ["commit-%d" % i for i in range(n)], "p")
    step("commit", lambda: p.commit_transaction(T))

    step("begin_abort", p.begin_transaction)
    produce(p, out_topic, ["abort-%d" % i for i in range(n)], "p")
    step("abort", lambda: p.abort_transaction(T))

    c = Consumer({
        "bootstrap.servers": addr,
        "client.id": "itest-confluent-consumer",
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
    })
    c.subscribe([in_topic])
    msgs = []
    deadline = time.time() + T
    while len(msgs) < nin and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            out("consume_error", error=m.error().name())
            continue
        msgs.append(m)
    out("consumed", count=len(msgs))
    if len(msgs) < nin:
        c.close()
        return

    step("begin_ctp", p.begin_transaction)
    produce(p, out_topic, ["xf-" + m.value().decode() for m in msgs], "p")
    positions = c.position(c.assignment())
    out("positions", offsets={str(tp.partition): tp.offset for tp in positions},
        topics=sorted({tp.topic for tp in positions}))
    step("send_offsets", lambda: p.send_offsets_to_transaction(
        positions, c.consumer_group_metadata(), T))
    step("commit_ctp", lambda: p.commit_transaction(T))
    c.close()


def fence(addr, out_topic, txnid, n):
    a = producer(addr, txnid, "a")
    if not step("a_init", lambda: a.init_transactions(T)):
        return
    step("a_begin", a.begin_transaction)
    produce(a, out_topic, ["zombie-%d" % i for i in range(n)], "a")

    b = producer(addr, txnid, "b")
    if not step("b_init", lambda: b.init_transactions(T)):
        return
    step("a_commit", lambda: a.commit_transaction(T))

    step("b_begin", b.begin_transaction)
    produce(b, out_topic, ["b-%d" % i for i in range(n)], "b")
    step("b_commit", lambda: b.commit_transaction(T))


def main():
    mode, addr = sys.argv[1], sys.argv[2]
    if mode == "flow":
        out_topic, in_topic, group, txnid, n, nin = sys.argv[3:9]
        flow(addr, out_topic, in_topic, group, txnid, int(n), int(nin))
    elif mode == "fence":
        out_topic, txnid, n = sys.argv[3:6]
        fence(addr, out_topic, txnid, int(n))
    else:
        sys.exit("unknown mode " + mode)
    out("done")


main()
