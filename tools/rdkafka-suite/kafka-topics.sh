#!/bin/bash
# librdkafka's tests shell out to Kafka's kafka-topics.sh (KAFKA_PATH/bin):
# the same operations through samsactl (CreateTopics, CreatePartitions,
# DeleteTopics over the Kafka protocol). SAMSACTL is its path.
B=; op=; topic=; parts=; rf=; cfgs=()
while [ $# -gt 0 ]; do
	case "$1" in
	--bootstrap-server) B=$2; shift ;;
	--create) op=create ;; --alter) op=alter ;; --delete) op=delete ;;
	--topic) topic=$2; shift ;;
	--partitions) parts=$2; shift ;;
	--replication-factor) rf=$2; shift ;;
	--config) cfgs+=(--config "$2"); shift ;;
	*) echo "kafka-topics.sh (samsa): unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case $op in
create) exec "$SAMSACTL" -broker "$B" topics create "$topic" ${parts:+--partitions $parts} ${rf:+--replication-factor $rf} "${cfgs[@]}" ;;
alter) exec "$SAMSACTL" -broker "$B" topics add-partitions "$topic" --total "$parts" ;;
delete) exec "$SAMSACTL" -broker "$B" topics delete "$topic" ;;
esac
exit 2
