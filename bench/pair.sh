#!/bin/bash
# A hot standby pair on this box from config.toml (primary 127.0.0.1:19092,
# standby 127.0.0.1:19192, links on 19093/19193, the primary's /metrics on
# 127.0.0.1:19644, the standby's on 19645), then a samsa-bench workload
# against the primary with its broker stages and the standby's replica
# fetches. Run from the repository root after make build:
#   bench/pair.sh [standby_fsync=false|true] [samsa-bench flags...]
# e.g. bench/pair.sh true -acks all -records 600000 -rounds 3
# Environment:
#   WORKLOAD=e2e          the workload (default produce)
#   STANDBY_DIR=/mnt/x    the standby's data directory goes under this
#                         directory: another disk, or a tmpfs standing in
#                         for the standby's own machine's disk
#   SAMSA=path            another samsa binary (an A/B of two builds)
#   ALONE=1               no standby: one node from the same config
#                         (bench/pair_cost.sh compares the two)
#   LINK_RATE=1gbit       the standby in a network namespace of its own,
#                         behind a veth pair shaped to this rate both ways
#                         (tc tbf; root): the link's share of the cost
#   LINK_DELAY=1ms        with LINK_RATE, a one-way delay on the link (netem)
#   LINK_COMPRESSION=lz4  the link's link_compression on both nodes
#   IDLE_PARTS=500        first create a topic of this many partitions that
#                         nothing writes: what the standby's fetches cost
#                         when they cover many logs
set -eu
FS=${1:-false}
shift || true
D=$(mktemp -d)
SD=$(mktemp -d ${STANDBY_DIR:+-p "$STANDBY_DIR"})
P1= P2=
NS=
trap 'kill $P1 $P2 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D" "$SD"; [ -z "$NS" ] || ip netns del "$NS"' EXIT
. bench/pair_config.sh
# Addresses: all on loopback, or with LINK_RATE the primary on 10.99.0.1
# and the standby on 10.99.0.2 in its own namespace.
A1=127.0.0.1 A2=127.0.0.1 IN2=()
if [ -n "${LINK_RATE:-}" ] && [ -z "${ALONE:-}" ]; then
	NS=samsa-standby-$$
	ip netns add "$NS"
	ip link add sbv0 type veth peer name sbv1 netns "$NS"
	ip addr add 10.99.0.1/24 dev sbv0
	ip link set sbv0 up
	ip -n "$NS" addr add 10.99.0.2/24 dev sbv1
	ip -n "$NS" link set sbv1 up
	ip -n "$NS" link set lo up
	for side in "" "-n $NS"; do
		dev=sbv0
		[ -n "$side" ] && dev=sbv1
		parent=root
		if [ -n "${LINK_DELAY:-}" ]; then
			# shellcheck disable=SC2086
			tc $side qdisc add dev $dev root handle 1: netem delay "$LINK_DELAY"
			parent="parent 1:"
		fi
		# shellcheck disable=SC2086
		tc $side qdisc add dev $dev $parent handle 2: tbf rate "$LINK_RATE" burst 256kb latency 100ms
	done
	A1=10.99.0.1 A2=10.99.0.2 IN2=(ip netns exec "$NS")
fi
if [ -n "${ALONE:-}" ]; then
	sed -e 's/^listen = ""$/listen = "127.0.0.1:19644"/' config.toml >"$D/n1.toml"
	echo "alone"
else
	pair_config "$D/n1.toml" 1 2 primary $A1:19093 $A2:19192 $A2:19193 127.0.0.1:19644 "$FS"
	pair_config "$D/n2.toml" 2 1 standby $A2:19193 $A1:19092 $A1:19093 127.0.0.1:19645 "$FS"
	if [ -n "${LINK_COMPRESSION:-}" ]; then
		sed -i "s/^link_compression = \"\" /link_compression = \"$LINK_COMPRESSION\" /" "$D/n1.toml" "$D/n2.toml"
	fi
	"${IN2[@]}" "${SAMSA:-bin/samsa}" -config "$D/n2.toml" -listen $A2:19192 -data-dir "$SD/d2" >"$D/l2" 2>&1 &
	P2=$!
	echo "pair: standby_fsync = $FS, standby data in $SD${LINK_RATE:+, link $LINK_RATE ${LINK_DELAY:-}}${LINK_COMPRESSION:+ $LINK_COMPRESSION}"
fi
grep -q 19644 "$D/n1.toml" || { echo "pair.sh: config.toml has no [admin] listen line to set" >&2; exit 1; }
"${SAMSA:-bin/samsa}" -config "$D/n1.toml" -listen $A1:19092 -data-dir "$D/d1" >"$D/l1" 2>&1 &
P1=$!
sleep 3 # the standby joins the ISR of the metadata log
cpu() { awk '{printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' /proc/$1/stat; }
[ -n "$P2" ] && S0=$(cpu $P2)
if [ -n "${IDLE_PARTS:-}" ]; then
	bin/samsactl -broker $A1:19092 topics create idle-parts --partitions "$IDLE_PARTS" >/dev/null
	sleep 2 # the standby creates and catches up with them
fi
SM=() # the standby's /metrics: not reachable in a namespace of its own
[ -n "$P2" ] && [ -z "$NS" ] && SM=(-standby-metrics 127.0.0.1:19645)
bin/samsa-bench "${WORKLOAD:-produce}" -target $A1:19092 -target-pid $P1 -metrics 127.0.0.1:19644 "${SM[@]}" "$@"
[ -n "$P2" ] && echo "standby CPU during the run: $(echo "$(cpu $P2) - $S0" | bc) s"
true
