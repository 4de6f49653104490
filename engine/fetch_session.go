package engine

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Fetch sessions (KIP-227). A consumer that fetches many partitions opens a
// session with a full fetch (session id 0, epoch 0); later fetches name the
// session and list only what changed (new fetch offsets, added partitions,
// forgotten ones), and the response carries only the partitions with
// something new: records, a moved high watermark or log start, an error.
// Sessions live in a bounded cache; when it is full and no session has been
// idle long enough to evict, the client gets session id 0 and keeps sending
// full fetches, as Kafka does.

// sessionEvictAfter is how long a session must be idle before a new one may
// take its slot (Kafka's min.incremental.fetch.session.eviction.ms).
const sessionEvictAfter = 2 * time.Minute

// sessKey names a partition in a session: by topic id from Fetch v13, by
// name before.
type sessKey struct {
	name string
	id   [16]byte
	idx  int32
}

// sessionPart is a session's view of one partition: what the client asked
// for, and what it was last told.
type sessionPart struct {
	key      sessKey
	offset   int64 // fetch offset
	maxBytes int32 // partition_max_bytes
	hwm      int64 // last high watermark sent; -1 = never sent
	lso      int64 // last stable offset sent
	logStart int64 // last log start offset sent
	// In the standby's session: the log start offset and the last
	// fetched epoch (-1: none) it last sent for the partition.
	followerStart int64
	followerEpoch int32
}

type fetchSession struct {
	id int32

	mu       sync.Mutex
	epoch    int32          // (mu) epoch the next request must carry
	topicIDs bool           // keyed by topic id (opened with Fetch v13+)
	parts    []*sessionPart // (mu) in response order
	index    map[sessKey]*sessionPart
	lastUsed time.Time // (mu)
	// spare and rotated are buffers kept between fetches (mu): the
	// standby's session lists every log, and at hundreds of fetches a
	// second allocating them anew was most of the primary's garbage.
	spare   []fetchItem
	rotated []*sessionPart
}

type sessionCache struct {
	mu   sync.Mutex
	byID map[int32]*fetchSession // (mu)
	max  int
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{byID: map[int32]*fetchSession{}, max: max}
}

// get returns the session with id, or nil.
func (c *sessionCache) get(id int32) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

func (c *sessionCache) remove(id int32) {
	c.mu.Lock()
	delete(c.byID, id)
	c.mu.Unlock()
}

// create makes a new session, evicting the longest idle one if the cache
// is full and it has been idle for sessionEvictAfter; nil if there is no
// room.
func (c *sessionCache) create(now time.Time) *fetchSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.max <= 0 {
		return nil
	}
	if len(c.byID) >= c.max {
		var oldest *fetchSession
		var oldestUsed time.Time
		for _, s := range c.byID {
			s.mu.Lock()
			used := s.lastUsed
			s.mu.Unlock()
			if oldest == nil || used.Before(oldestUsed) {
				oldest, oldestUsed = s, used
			}
		}
		if now.Sub(oldestUsed) < sessionEvictAfter {
			return nil
		}
		delete(c.byID, oldest.id)
	}
	id := int32(0)
	for id == 0 || c.byID[id] != nil {
		id = rand.Int32()
	}
	s := newFetchSession(id, now)
	c.byID[id] = s
	return s
}

// newFetchSession returns an empty session whose next request must carry
// epoch 1.
func newFetchSession(id int32, now time.Time) *fetchSession {
	return &fetchSession{id: id, epoch: 1, index: map[sessKey]*sessionPart{}, lastUsed: now}
}

// nextEpoch is the epoch after e, wrapping to 1 as Kafka does.
func nextEpoch(e int32) int32 {
	if e == 0x7fffffff {
		return 1
	}
	return e + 1
}

// upsert adds a partition or updates what the client asks of it. s.mu
// should be held.
func (s *fetchSession) upsertLocked(k sessKey, offset int64, maxBytes int32) {
	if sp := s.index[k]; sp != nil {
		sp.offset, sp.maxBytes = offset, maxBytes
		return
	}
	sp := &sessionPart{key: k, offset: offset, maxBytes: maxBytes, hwm: -1, logStart: -1}
	s.index[k] = sp
	s.parts = append(s.parts, sp)
}

// forgetLocked drops a partition. s.mu should be held.
func (s *fetchSession) forgetLocked(k sessKey) {
	if s.index[k] == nil {
		return
	}
	delete(s.index, k)
	for i, sp := range s.parts {
		if sp.key == k {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
}

// rotateLocked moves the partitions that just returned records to the end,
// so that under max_bytes every partition gets its turn. s.mu should be
// held.
func (s *fetchSession) rotateLocked(returned map[*sessionPart]bool) {
	if len(returned) == 0 || len(returned) == len(s.parts) {
		return
	}
	out := slices.Grow(s.rotated[:0], len(s.parts))
	for _, sp := range s.parts {
		if !returned[sp] {
			out = append(out, sp)
		}
	}
	for _, sp := range s.parts {
		if returned[sp] {
			out = append(out, sp)
		}
	}
	clear(s.parts)
	s.parts, s.rotated = out, s.parts[:0]
}

// takeItems returns a buffer of n fetch items, the session's spare one
// when it is free and large enough. s.mu should be held.
func (s *fetchSession) takeItems(n int) []fetchItem {
	buf := s.spare
	s.spare = nil
	if cap(buf) < n {
		return make([]fetchItem, n)
	}
	return buf[:n]
}

// giveItems hands a fetch's items back once its answer is sent.
func (s *fetchSession) giveItems(items []fetchItem) {
	clear(items) // no slices or partitions kept alive
	s.mu.Lock()
	s.spare = items[:0]
	s.mu.Unlock()
}
