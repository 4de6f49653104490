// Package logtool reads samsa's on-disk partition logs offline, for
// operators: Dump prints a segment, index, time index or producer snapshot
// file as Kafka's kafka-dump-log does, and Verify checks a data directory
// (framing, CRCs, offsets, indexes, epochs, snapshots) without changing it.
//
// Every file is untrusted input: damaged bytes are reported, never
// trusted, and never make the tools panic or read unbounded memory.
package logtool
