# Sourced by bench/pair.sh and bench/catchup.sh: pair_config writes a pair
# node's config from config.toml.
#   pair_config OUT NODE PEER ROLE LINK PEER_CLIENT PEER_LINK [ADMIN [STANDBY_FSYNC]]
# ADMIN, if set, is the [admin] listener (/metrics).
pair_config() {
	sed -e "s/^node_id = 1$/node_id = $2/" \
		-e "s/^role = \"\" .*/role = \"$4\"/" -e "s/^listen = \"\"  .*/listen = \"$5\"/" \
		-e "s/^peer_id = -1 .*/peer_id = $3/" -e "s/^peer_client = \"\" .*/peer_client = \"$6\"/" \
		-e "s/^peer_link = \"\" .*/peer_link = \"$7\"/" -e "s/^standby_fsync = false/standby_fsync = ${9:-false}/" \
		-e "s/^listen = \"\"$/listen = \"${8:-}\"/" \
		config.toml >"$1"
}
