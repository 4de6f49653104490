package engine

// DescribeLogDirs (key 35), v0-v4.
//
// samsa has one log directory, the store's, reported by its absolute path
// with its total and usable bytes (v4+, from statfs; -1 when unknown). Each
// partition reports its size; on a standby also its offset lag behind the
// primary's high watermark (0 on the primary). A null topic list means
// every topic; partitions this node does not host are left out, as Kafka
// does. v5 is not advertised.

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeLogDirs.Int16(), 0, 4, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeLogDirs(kreq.(*kmsg.DescribeLogDirsRequest)))
	})
}

func (b *Broker) handleDescribeLogDirs(r *kmsg.DescribeLogDirsRequest) *kmsg.DescribeLogDirsResponse {
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.store.Dir()
	if abs, err := filepath.Abs(dir.Dir); err == nil {
		dir.Dir = abs
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir.Dir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * st.Bsize
		dir.UsableBytes = int64(st.Bavail) * st.Bsize
	} else {
		dir.TotalBytes, dir.UsableBytes = -1, -1
	}
	add := func(t *topic, idxs []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = t.name
		parts := t.parts()
		for _, idx := range idxs {
			if idx < 0 || int(idx) >= len(parts) {
				continue // Kafka leaves out what it does not host
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = idx
			dp.Size = parts[idx].log.Size()
			if b.pair.IsStandby() {
				dp.OffsetLag = max(0, parts[idx].replica.PrimaryHWM()-parts[idx].log.EndOffset())
			}
			dt.Partitions = append(dt.Partitions, dp)
		}
		if len(dt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, dt)
		}
	}
	all := func(t *topic) []int32 {
		idxs := make([]int32, len(t.parts()))
		for i := range idxs {
			idxs[i] = int32(i)
		}
		return idxs
	}
	if r.Topics == nil {
		for _, t := range b.topicList() {
			add(t, all(t))
		}
	} else {
		for _, rt := range r.Topics {
			if t := b.topic(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp
}
