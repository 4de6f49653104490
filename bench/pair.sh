#!/bin/bash
# A hot standby pair on this box from config.toml (primary 127.0.0.1:19092,
# standby 127.0.0.1:19192, links on 19093/19193, the primary's /metrics on
# 127.0.0.1:19644), then a samsa-bench workload against the primary with
# its broker stages. Run from the repository root after make build:
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
set -eu
FS=${1:-false}
shift || true
D=$(mktemp -d)
SD=$(mktemp -d ${STANDBY_DIR:+-p "$STANDBY_DIR"})
P1= P2=
trap 'kill $P1 $P2 2>/dev/null; wait 2>/dev/null; rm -rf "$D" "$SD"' EXIT
mk() { # node peer role link peerclient peerlink admin
	sed -e "s/^node_id = 1$/node_id = $1/" \
		-e "s/^role = \"\" .*/role = \"$3\"/" -e "s/^listen = \"\"  .*/listen = \"$4\"/" \
		-e "s/^peer_id = -1 .*/peer_id = $2/" -e "s/^peer_client = \"\" .*/peer_client = \"$5\"/" \
		-e "s/^peer_link = \"\" .*/peer_link = \"$6\"/" -e "s/^standby_fsync = false/standby_fsync = $FS/" \
		-e "s/^listen = \"\"$/listen = \"$7\"/" \
		config.toml >"$D/n$1.toml"
}
if [ -n "${ALONE:-}" ]; then
	sed -e 's/^listen = ""$/listen = "127.0.0.1:19644"/' config.toml >"$D/n1.toml"
	echo "alone"
else
	mk 1 2 primary 127.0.0.1:19093 127.0.0.1:19192 127.0.0.1:19193 127.0.0.1:19644
	mk 2 1 standby 127.0.0.1:19193 127.0.0.1:19092 127.0.0.1:19093 127.0.0.1:19645
	"${SAMSA:-bin/samsa}" -config "$D/n2.toml" -listen 127.0.0.1:19192 -data-dir "$SD/d2" >"$D/l2" 2>&1 &
	P2=$!
	echo "pair: standby_fsync = $FS, standby data in $SD"
fi
grep -q 19644 "$D/n1.toml" || { echo "pair.sh: config.toml has no [admin] listen line to set" >&2; exit 1; }
"${SAMSA:-bin/samsa}" -config "$D/n1.toml" -listen 127.0.0.1:19092 -data-dir "$D/d1" >"$D/l1" 2>&1 &
P1=$!
sleep 3 # the standby joins the ISR of the metadata log
cpu() { awk '{printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' /proc/$1/stat; }
[ -n "$P2" ] && S0=$(cpu $P2)
bin/samsa-bench "${WORKLOAD:-produce}" -target 127.0.0.1:19092 -target-pid $P1 -metrics 127.0.0.1:19644 "$@"
[ -n "$P2" ] && echo "standby CPU during the run: $(echo "$(cpu $P2) - $S0" | bc) s"
true
