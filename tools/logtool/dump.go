package logtool

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"samsa/segment"
	"samsa/segment/compress"
)

// DumpOptions selects what Dump prints.
type DumpOptions struct {
	// Records also prints every record (offset, timestamp, key, value,
	// headers), like kafka-dump-log's --print-data-log.
	Records bool
	// JSON prints one JSON object per line (per batch, records nested;
	// per index entry) instead of text.
	JSON bool
	// MaxValueBytes truncates printed keys and values to this many bytes;
	// 0 means 64 for text and unlimited for JSON.
	MaxValueBytes int
}

// defaultTextValueBytes is how much of a key or value the text dump shows
// unless told otherwise.
const defaultTextValueBytes = 64

// Dump prints the batches of one segment file (.log), or the entries of an
// .index, .timeindex, producer .snapshot or leader-epoch-checkpoint file,
// to w; the type comes from the file name (leftovers such as .log.cleaned
// are read as what they hold). A damaged batch (bad CRC, bad framing,
// truncated tail) is printed with its problem and Dump goes on where the
// framing allows, else says it stops. It returns an error only when the
// file cannot be read at all, when a read fails midway, or when writing
// to w fails.
//
// The text format follows kafka-dump-log. In JSON mode every line is an
// object: per batch (with "records" when Records is set), per damaged
// stretch ({"position", "size", "error", "stopped"}), per index entry.
func Dump(w io.Writer, path string, opt DumpOptions) error {
	_, typ, _ := splitName(filepath.Base(path))
	switch typ {
	case ".log", ".index", ".timeindex", ".txnindex", ".snapshot", epochCheckpointName:
	default:
		return fmt.Errorf("cannot dump %s: unknown file type (want .log, .index, .timeindex, .txnindex, .snapshot or %s)", path, epochCheckpointName)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot dump: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot dump: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot dump %s: is a directory", path)
	}
	d := &dumper{w: bufio.NewWriterSize(w, 32<<10), opt: opt, path: path}
	d.enc = json.NewEncoder(d.w)
	d.enc.SetEscapeHTML(false)
	if d.opt.MaxValueBytes == 0 && !d.opt.JSON {
		d.opt.MaxValueBytes = defaultTextValueBytes
	}
	if !opt.JSON {
		d.printf("Dumping %s\n", safe(path))
	}
	switch typ {
	case ".log":
		err = d.log(f, st.Size())
	case ".index":
		err = d.offsetIndex(f, st.Size())
	case ".timeindex":
		err = d.timeIndex(f, st.Size())
	case ".snapshot":
		err = d.snapshot(f, st.Size())
	case ".txnindex":
		err = d.txnIndex(f, st.Size())
	default:
		err = d.epochs(f, st.Size())
	}
	if ferr := d.w.Flush(); err == nil && d.err == nil {
		d.err = ferr
	}
	if err == nil && d.err != nil {
		err = fmt.Errorf("cannot write dump: %w", d.err)
	}
	return err
}

// dumper holds the state of one Dump call.
type dumper struct {
	w       *bufio.Writer
	enc     *json.Encoder
	opt     DumpOptions
	path    string
	err     error  // the first write error; the dump stops on it
	line    []byte // text line being built
	scratch []byte // inflated records
}

func (d *dumper) printf(format string, args ...any) {
	if d.err == nil {
		_, d.err = fmt.Fprintf(d.w, format, args...)
	}
}

func (d *dumper) writeLine(b []byte) {
	if d.err == nil {
		b = append(b, '\n')
		_, d.err = d.w.Write(b)
	}
}

func (d *dumper) json(v any) {
	if d.err == nil {
		d.err = d.enc.Encode(v)
	}
}

// log dumps a segment file batch by batch.
func (d *dumper) log(f *os.File, size int64) error {
	if base, ok := segment.ParseOffsetName(stemOf(d.path)); ok && !d.opt.JSON {
		d.printf("Log starting offset: %d\n", base)
	}
	sc := newBatchScanner(f, size)
	for d.err == nil {
		fr, ok, err := sc.next()
		if err != nil {
			d.damage(frame{pos: sc.pos, size: size - sc.pos, detail: err.Error(), stop: true})
			return err
		}
		if !ok {
			break
		}
		if fr.header && fr.kind != kindTornTail {
			d.batch(&fr)
		} else {
			d.damage(fr)
		}
	}
	return nil
}

// stemOf is the offset part of a file name.
func stemOf(path string) string {
	stem, _, _ := splitName(filepath.Base(path))
	return stem
}

// jsonDamage is a stretch of a segment that is no readable batch.
type jsonDamage struct {
	Position   int64  `json:"position"`
	Size       int64  `json:"size"`
	BaseOffset *int64 `json:"baseOffset,omitempty"` // when a header was readable
	Error      string `json:"error"`
	Stopped    bool   `json:"stopped"`
}

// damage prints a frame that is not a readable batch.
func (d *dumper) damage(fr frame) {
	if d.opt.JSON {
		j := jsonDamage{Position: fr.pos, Size: fr.size, Error: fr.detail, Stopped: fr.stop}
		if fr.header {
			j.BaseOffset = &fr.h.BaseOffset
		}
		d.json(j)
		return
	}
	b := fmt.Appendf(d.line[:0], "position: %d: %s", fr.pos, fr.detail)
	if fr.header {
		b = fmt.Appendf(b, " (baseOffset: %d lastOffset: %d)", fr.h.BaseOffset, fr.h.LastOffset())
	}
	if fr.stop {
		b = fmt.Appendf(b, "; the dump stops here, %d bytes not shown", fr.size)
	}
	d.line = b
	d.writeLine(b)
}

// jsonBatch is one batch in JSON mode; the names are kafka-dump-log's.
type jsonBatch struct {
	Position             int64        `json:"position"`
	BaseOffset           int64        `json:"baseOffset"`
	LastOffset           int64        `json:"lastOffset"`
	Count                int32        `json:"count"`
	BaseSequence         int32        `json:"baseSequence"`
	LastSequence         int32        `json:"lastSequence"`
	ProducerID           int64        `json:"producerId"`
	ProducerEpoch        int16        `json:"producerEpoch"`
	PartitionLeaderEpoch int32        `json:"partitionLeaderEpoch"`
	IsTransactional      bool         `json:"isTransactional"`
	IsControl            bool         `json:"isControl"`
	TimestampType        string       `json:"timestampType"`
	FirstTimestamp       int64        `json:"firstTimestamp"`
	MaxTimestamp         int64        `json:"maxTimestamp"`
	Size                 int64        `json:"size"`
	Magic                int8         `json:"magic"`
	CompressCodec        string       `json:"compresscodec"`
	CRC                  uint32       `json:"crc"`
	IsValid              bool         `json:"isvalid"`
	Error                string       `json:"error,omitempty"`
	Records              []jsonRecord `json:"records,omitempty"`
	RecordsError         string       `json:"recordsError,omitempty"`
}

// jsonRecord is one record in JSON mode. Key, value and header values are
// null when null, text when valid UTF-8, else base64 with the encoding
// field saying so.
type jsonRecord struct {
	Offset           int64        `json:"offset"`
	Timestamp        int64        `json:"timestamp"`
	KeySize          int          `json:"keySize"`
	ValueSize        int          `json:"valueSize"`
	Sequence         int32        `json:"sequence"`
	Headers          []jsonHeader `json:"headers"`
	Key              *string      `json:"key"`
	KeyEncoding      string       `json:"keyEncoding,omitempty"`
	Value            *string      `json:"value"`
	ValueEncoding    string       `json:"valueEncoding,omitempty"`
	ControlType      string       `json:"controlType,omitempty"`
	CoordinatorEpoch *int32       `json:"coordinatorEpoch,omitempty"`
}

type jsonHeader struct {
	Key           string  `json:"key"`
	KeyEncoding   string  `json:"keyEncoding,omitempty"`
	Value         *string `json:"value"`
	ValueEncoding string  `json:"valueEncoding,omitempty"`
}

func timestampType(h *segment.BatchHeader) string {
	if h.Attributes&segment.AttrLogAppendTime != 0 {
		return "LogAppendTime"
	}
	return "CreateTime"
}

// lastSequence is -1 for a batch without sequence numbers, as Kafka
// prints it.
func lastSequence(h *segment.BatchHeader) int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	return h.LastSequence()
}

// recordSequence is a record's sequence number: the batch's base sequence
// plus its offset delta, wrapping at MaxInt32 as Kafka does.
func recordSequence(h *segment.BatchHeader, delta int32) int32 {
	if h.BaseSequence < 0 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(delta)
	if s > 0x7fffffff {
		s -= 0x7fffffff + 1
	}
	return int32(s)
}

// recordTimestamp is a record's timestamp: the batch's for LogAppendTime.
func recordTimestamp(h *segment.BatchHeader, r *segment.Record) int64 {
	if h.Attributes&segment.AttrLogAppendTime != 0 {
		return h.MaxTimestamp
	}
	return h.FirstTimestamp + r.TimestampDelta
}

// batch prints a framed batch, and its records when asked.
func (d *dumper) batch(fr *frame) {
	h := &fr.h
	valid := fr.kind == ""
	if d.opt.JSON {
		j := jsonBatch{
			Position: fr.pos, BaseOffset: h.BaseOffset, LastOffset: h.LastOffset(), Count: h.NumRecords,
			BaseSequence: h.BaseSequence, LastSequence: lastSequence(h),
			ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, PartitionLeaderEpoch: h.LeaderEpoch,
			IsTransactional: h.IsTransactional(), IsControl: h.IsControl(), TimestampType: timestampType(h),
			FirstTimestamp: h.FirstTimestamp, MaxTimestamp: h.MaxTimestamp, Size: fr.size, Magic: h.Magic,
			CompressCodec: compress.Codec(h.Compression()).String(), CRC: h.CRC, IsValid: valid, Error: fr.detail,
		}
		if d.opt.Records {
			j.Records = []jsonRecord{}
			err := d.records(fr, func(r *segment.Record) {
				j.Records = append(j.Records, d.jsonRecord(h, r))
			})
			if err != nil {
				j.RecordsError = err.Error()
			}
		}
		d.json(&j)
		return
	}
	b := fmt.Appendf(d.line[:0], "baseOffset: %d lastOffset: %d count: %d baseSequence: %d lastSequence: %d producerId: %d producerEpoch: %d partitionLeaderEpoch: %d isTransactional: %t isControl: %t position: %d %s: %d size: %d magic: %d compresscodec: %s crc: %d isvalid: %t",
		h.BaseOffset, h.LastOffset(), h.NumRecords, h.BaseSequence, lastSequence(h), h.ProducerID, h.ProducerEpoch, h.LeaderEpoch,
		h.IsTransactional(), h.IsControl(), fr.pos, timestampType(h), h.MaxTimestamp, fr.size, h.Magic,
		compress.Codec(h.Compression()), h.CRC, valid)
	if !valid {
		b = fmt.Appendf(b, " (%s)", fr.detail)
	}
	d.line = b
	d.writeLine(b)
	if !d.opt.Records {
		return
	}
	err := d.records(fr, func(r *segment.Record) {
		d.line = d.textRecord(d.line[:0], h, r)
		d.writeLine(d.line)
	})
	if err != nil {
		d.line = fmt.Appendf(d.line[:0], "| %v", err)
		d.writeLine(d.line)
	}
}

// records walks the records of a framed batch.
func (d *dumper) records(fr *frame, fn func(*segment.Record)) error {
	if fr.batch == nil {
		return fmt.Errorf("records not decoded: a batch of %d bytes is over the %d MiB this tool holds in memory", fr.size, maxBatchRead>>20)
	}
	_, err := walkRecords(fr.batch, &fr.h, &d.scratch, fn)
	return err
}

// Control record types (the key: version int16, type int16).
var controlTypes = map[int16]string{
	0: "ABORT", 1: "COMMIT", 2: "LEADER_CHANGE", 3: "SNAPSHOT_HEADER", 4: "SNAPSHOT_FOOTER",
	5: "KRAFT_VERSION", 6: "KRAFT_VOTERS",
}

// controlInfo decodes a control record: its type name and, for a
// transaction marker, the coordinator epoch (value: version int16,
// coordinatorEpoch int32).
func controlInfo(r *segment.Record) (typ string, coordEpoch int32, isMarker bool) {
	if len(r.Key) < 4 {
		return "UNKNOWN", 0, false
	}
	t := int16(binary.BigEndian.Uint16(r.Key[2:]))
	typ, ok := controlTypes[t]
	if !ok {
		typ = "UNKNOWN(" + strconv.Itoa(int(t)) + ")"
	}
	if (t == 0 || t == 1) && len(r.Value) >= 6 {
		return typ, int32(binary.BigEndian.Uint32(r.Value[2:])), true
	}
	return typ, 0, false
}

// textRecord appends a record line as kafka-dump-log prints it.
func (d *dumper) textRecord(b []byte, h *segment.BatchHeader, r *segment.Record) []byte {
	b = fmt.Appendf(b, "| offset: %d %s: %d keySize: %d valueSize: %d sequence: %d headerKeys: [",
		h.BaseOffset+int64(r.OffsetDelta), timestampType(h), recordTimestamp(h, r),
		bytesLen(r.Key), bytesLen(r.Value), recordSequence(h, r.OffsetDelta))
	first := true
	segment.ForEachHeader(r, func(k, _ []byte) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendText(b, k, d.opt.MaxValueBytes)
	})
	b = append(b, ']')
	if h.IsControl() {
		typ, epoch, marker := controlInfo(r)
		if marker {
			return fmt.Appendf(b, " endTxnMarker: %s coordinatorEpoch: %d", typ, epoch)
		}
		b = append(b, " controlType: "...)
		b = append(b, typ...)
	}
	if r.Key != nil && !h.IsControl() {
		b = append(b, " key: "...)
		b = appendText(b, r.Key, d.opt.MaxValueBytes)
	}
	if r.Value != nil {
		b = append(b, " payload: "...)
		b = appendText(b, r.Value, d.opt.MaxValueBytes)
	}
	return b
}

func (d *dumper) jsonRecord(h *segment.BatchHeader, r *segment.Record) jsonRecord {
	j := jsonRecord{
		Offset: h.BaseOffset + int64(r.OffsetDelta), Timestamp: recordTimestamp(h, r),
		KeySize: bytesLen(r.Key), ValueSize: bytesLen(r.Value), Sequence: recordSequence(h, r.OffsetDelta),
		Headers: []jsonHeader{},
	}
	k := makeJSONBytes(r.Key, d.opt.MaxValueBytes)
	j.Key, j.KeyEncoding = k.Text, k.Encoding
	v := makeJSONBytes(r.Value, d.opt.MaxValueBytes)
	j.Value, j.ValueEncoding = v.Text, v.Encoding
	segment.ForEachHeader(r, func(hk, hv []byte) {
		kb := makeJSONBytes(hk, d.opt.MaxValueBytes)
		vb := makeJSONBytes(hv, d.opt.MaxValueBytes)
		jh := jsonHeader{KeyEncoding: kb.Encoding, Value: vb.Text, ValueEncoding: vb.Encoding}
		if kb.Text != nil {
			jh.Key = *kb.Text
		}
		j.Headers = append(j.Headers, jh)
	})
	if h.IsControl() {
		typ, epoch, marker := controlInfo(r)
		j.ControlType = typ
		if marker {
			j.CoordinatorEpoch = &epoch
		}
	}
	return j
}

// bytesLen is a key's or value's size as Kafka prints it: -1 for null.
func bytesLen(b []byte) int {
	if b == nil {
		return -1
	}
	return len(b)
}
