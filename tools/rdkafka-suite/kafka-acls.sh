#!/bin/bash
# kafka-acls.sh for librdkafka's tests (KAFKA_PATH/bin): samsactl acls
# (CreateAcls, DeleteAcls). SAMSACTL is its path.
B=; op=; perm=; principal=; host=; topic=; oper=
while [ $# -gt 0 ]; do
	case "$1" in
	--bootstrap-server) B=$2; shift ;;
	--add) op=create ;; --remove) op=delete ;; --force) ;;
	--allow-principal) perm=allow; principal=$2; shift ;;
	--deny-principal) perm=deny; principal=$2; shift ;;
	--allow-host | --deny-host) host=$2; shift ;;
	--operation) oper=$(echo "$2" | tr 'A-Z' 'a-z'); shift ;;
	--topic) topic=$2; shift ;;
	*) echo "kafka-acls.sh (samsa): unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case $op in
create) exec "$SAMSACTL" -broker "$B" acls create --$perm "$principal" --operation "$oper" --topic "$topic" ${host:+--host "$host"} ;;
delete) exec "$SAMSACTL" -broker "$B" acls delete --principal "$principal" --permission $perm --operation "$oper" --topic "$topic" ${host:+--host "$host"} ;;
esac
exit 2
