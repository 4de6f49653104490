#!/bin/bash
# A hot standby pair on this box from config.toml (primary 127.0.0.1:19092,
# standby 127.0.0.1:19192, links on 19093/19193), then samsa-bench produce
# against the primary. Run from the repository root after make build:
#   bench/pair.sh [standby_fsync=false|true] [samsa-bench flags...]
# e.g. bench/pair.sh true -acks all -records 600000 -rounds 3
set -eu
FS=${1:-false}
shift || true
D=$(mktemp -d)
trap 'kill $P1 $P2 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
mk() { # node peer role link peerclient peerlink
	sed -e "s/^node_id = 1$/node_id = $1/" \
		-e "s/^role = \"\" .*/role = \"$3\"/" -e "s/^listen = \"\"  .*/listen = \"$4\"/" \
		-e "s/^peer_id = -1 .*/peer_id = $2/" -e "s/^peer_client = \"\" .*/peer_client = \"$5\"/" \
		-e "s/^peer_link = \"\" .*/peer_link = \"$6\"/" -e "s/^standby_fsync = false/standby_fsync = $FS/" \
		config.toml >"$D/n$1.toml"
}
mk 1 2 primary 127.0.0.1:19093 127.0.0.1:19192 127.0.0.1:19193
mk 2 1 standby 127.0.0.1:19193 127.0.0.1:19092 127.0.0.1:19093
bin/samsa -config "$D/n1.toml" -listen 127.0.0.1:19092 -data-dir "$D/d1" >"$D/l1" 2>&1 &
P1=$!
bin/samsa -config "$D/n2.toml" -listen 127.0.0.1:19192 -data-dir "$D/d2" >"$D/l2" 2>&1 &
P2=$!
sleep 3 # the standby joins the ISR of the metadata log
echo "pair: standby_fsync = $FS"
bin/samsa-bench produce -target 127.0.0.1:19092 -target-pid $P1 "$@"
