package engine

// The catalog as engine/replica sees it (replica.Catalog): the pair's code
// lives in that package and reaches the broker only through these
// methods, as the group coordinator does through groupBackend.

import "samsa/engine/replica"

type pairCatalog struct{ b *Broker }

// Logs lists every replicated log, the metadata log first, then topic by
// topic (by name) with partitions in order.
func (c pairCatalog) Logs() []*replica.Log {
	out := []*replica.Log{&c.b.metaPart.replica}
	for _, t := range c.b.topicList() {
		for _, p := range t.parts() {
			out = append(out, &p.replica)
		}
	}
	return out
}

func (c pairCatalog) LogByID(id [16]byte, idx int32) *replica.Log {
	if id == metadataLogID {
		if idx != 0 {
			return nil
		}
		return &c.b.metaPart.replica
	}
	t := c.b.topicByID(id)
	if t == nil || idx < 0 || int(idx) >= len(t.parts()) {
		return nil
	}
	return &t.parts()[idx].replica
}

func (c pairCatalog) ApplyMetadata() error { return c.b.applyMetaLog() }

func (c pairCatalog) Resync() error { return c.b.resyncCatalog() }

func (c pairCatalog) RecordLeader(node, epoch int32) error {
	unlock := c.b.lockMeta()
	defer unlock()
	return c.b.commitMeta(recLeader, metaLeader{Node: node, Epoch: epoch})
}

func (c pairCatalog) Copying(on bool) { c.b.store.SetCopying(on) }

// Lead serves groups from the replicated __consumer_offsets and
// transactions from __transaction_state, completing those left half-way.
func (c pairCatalog) Lead() {
	c.b.loadGroups()
	c.b.loadTxns()
}

// Follow hands group and transaction coordination to the new primary.
func (c pairCatalog) Follow() {
	c.b.groups.Unload()
	c.b.txns.Unload()
}
