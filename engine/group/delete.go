package group

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups (key 42) deletes empty groups and their offsets.
func (c *Coordinator) DeleteGroups(r *kmsg.DeleteGroupsRequest, respond Respond) {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = r.Version
	type result struct {
		idx  int
		g    *Group
		recs []Record
	}
	var writes []result
	seen := map[string]bool{}
	for _, id := range r.Groups {
		if seen[id] {
			continue
		}
		seen[id] = true
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		switch {
		case !c.loaded.Load():
			dg.ErrorCode = c.loadErr()
		default:
			g := c.group(id)
			if g == nil {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				break
			}
			g.lock()
			switch {
			case g.state == Dead:
				dg.ErrorCode = kerr.GroupIDNotFound.Code
			case g.isEmpty():
				var recs []Record
				for k := range g.offsets {
					recs = append(recs, offsetTombstone(g.id, k))
				}
				if g.typ == typeConsumer {
					recs = append(recs, g.consumerTombstones()...)
				} else if g.hasMetadata {
					recs = append(recs, groupTombstone(g.id))
				}
				g.offsets = map[topicPartition]offset{}
				g.setState(Dead)
				writes = append(writes, result{len(resp.Groups), g, recs})
			default:
				dg.ErrorCode = kerr.NonEmptyGroup.Code
			}
			g.unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	if len(writes) == 0 {
		respond(resp)
		return
	}
	left := len(writes)
	done := make(chan struct{}, len(writes))
	for _, w := range writes {
		if len(w.recs) == 0 {
			c.removeGroup(w.g)
			done <- struct{}{}
			continue
		}
		c.be.Append(PartitionFor(w.g.id, c.parts), w.recs, false, func(err error) {
			if err != nil {
				resp.Groups[w.idx].ErrorCode = c.be.AppendErrorCode(err)
			}
			// Only now: a group created again meanwhile must not have
			// its first commits follow these tombstones in the log.
			c.removeGroup(w.g)
			done <- struct{}{}
		})
	}
	go func() {
		for ; left > 0; left-- {
			<-done
		}
		respond(resp)
	}()
}
