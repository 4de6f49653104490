package kclient

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendRequest frames exactly as franz-go's own formatter does, for
// flexible and non-flexible versions alike.
func TestAppendRequestMatchesKmsg(t *testing.T) {
	for _, req := range []kmsg.Request{
		func() kmsg.Request { r := kmsg.NewPtrApiVersionsRequest(); r.Version = 0; return r }(),
		func() kmsg.Request {
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = 3
			r.ClientSoftwareName = "x"
			return r
		}(),
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.Version = 4; return r }(),
		func() kmsg.Request { r := kmsg.NewPtrMetadataRequest(); r.Version = 12; return r }(),
		func() kmsg.Request { r := kmsg.NewPtrFetchRequest(); r.Version = 13; r.ReplicaID = 2; return r }(),
	} {
		want := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cid")).AppendRequest(nil, req, 7)
		if got := AppendRequest([]byte("prefix"), req, 7, "cid"); !bytes.Equal(got[6:], want) {
			t.Errorf("%s v%d:\n got %x\nwant %x", kmsg.NameForKey(req.Key()), req.GetVersion(), got[6:], want)
		}
	}
}

func TestResponseBody(t *testing.T) {
	f := func(frame []byte, corr int32, tags bool, want []byte, wantErr bool) {
		t.Helper()
		got, err := ResponseBody(frame, corr, tags)
		if (err != nil) != wantErr || !bytes.Equal(got, want) {
			t.Errorf("ResponseBody(%x, %d, %v) = %x, %v; want %x (error %v)", frame, corr, tags, got, err, want, wantErr)
		}
	}
	f([]byte{0, 0, 0, 5, 1, 2}, 5, false, []byte{1, 2}, false)
	f([]byte{0, 0, 0, 5, 0, 1, 2}, 5, true, []byte{1, 2}, false)
	f([]byte{0, 0, 0, 5, 1, 9, 1, 7, 3}, 5, true, []byte{3}, false) // one tag: id 9, 1 byte
	f([]byte{0, 0, 0, 6, 1, 2}, 5, false, nil, true)                // another request's answer
	f([]byte{0, 0, 5}, 5, false, nil, true)                         // too short
	f([]byte{0, 0, 0, 5, 1, 9, 4, 7}, 5, true, nil, true)           // tag longer than the frame
	f([]byte{0, 0, 0, 5, 0x80}, 5, true, nil, true)                 // truncated varint
}

func TestReadFrameBounds(t *testing.T) {
	for _, size := range []int32{-1, 0, 3, MaxResponse + 1} {
		if _, err := ReadFrame(bytes.NewReader(binary.BigEndian.AppendUint32(nil, uint32(size)))); err == nil {
			t.Errorf("frame of %d bytes accepted", size)
		}
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 8, 1, 2})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want ErrUnexpectedEOF", err)
	}
}

// A Conn round trip against a peer that answers one ApiVersions request.
func TestConnRequest(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		defer b.Close()
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 3
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MaxVersion: 4}}
		answer(b, resp) // no header tags: ApiVersions
	}()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	kresp, err := New(a, "t").Request(req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := kresp.(*kmsg.ApiVersionsResponse); len(r.ApiKeys) != 1 || r.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("response %+v", r)
	}
}

// A peer's bytes never make ResponseBody panic or return more than it got.
func FuzzResponseBody(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5, 1, 9, 1, 7, 3}, true)
	f.Add([]byte{0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}, true)
	f.Fuzz(func(t *testing.T, frame []byte, tags bool) {
		body, err := ResponseBody(frame, 5, tags)
		if err == nil && len(body) > len(frame) {
			t.Fatalf("body of %d bytes from a frame of %d", len(body), len(frame))
		}
	})
}

// RequestReusing reads responses into one buffer: a response that fits
// reuses it, a larger one replaces it, and after a run of responses under
// an eighth of a large buffer it is given back. Each response's bytes are
// right while they are current.
func TestRequestReusing(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	sizes := []int{3 << 20, 1 << 20, 4 << 20}
	for range 64 {
		sizes = append(sizes, 100<<10)
	}
	go func() {
		defer b.Close()
		for _, n := range sizes {
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = 4
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.RecordBatches = bytes.Repeat([]byte{byte(n >> 10)}, n)
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic = "t"
			rt.Partitions = append(rt.Partitions, rp)
			resp.Topics = append(resp.Topics, rt)
			if answer(b, resp) != nil {
				return
			}
		}
	}()
	c := New(a, "test")
	var first *byte
	for i, n := range sizes {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 4
		kresp, err := c.RequestReusing(req, 10*time.Second)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		got := kresp.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches
		if len(got) != n || got[0] != byte(n>>10) || got[n-1] != byte(n>>10) {
			t.Fatalf("response %d: %d bytes, want %d of %d", i, len(got), n, byte(n>>10))
		}
		switch i {
		case 0:
			first = &c.resp[:1][0]
		case 1:
			if &c.resp[:1][0] != first {
				t.Fatal("a smaller response did not reuse the buffer")
			}
		case 2:
			if &c.resp[:1][0] == first || cap(c.resp) < 4<<20 {
				t.Fatal("a larger response did not replace the buffer")
			}
		case len(sizes) - 2:
			if cap(c.resp) < 4<<20 {
				t.Fatalf("buffer given back after %d small responses, want 64", i-2)
			}
		case len(sizes) - 1:
			if cap(c.resp) != 0 {
				t.Fatalf("buffer of %d bytes kept after 64 responses under an eighth of it", cap(c.resp))
			}
		}
	}
}

// answer reads one request frame from c and writes resp for it, with a
// response header without tagged fields (v0).
func answer(c net.Conn, resp kmsg.Response) error {
	frame, err := ReadFrame(c)
	if err != nil {
		return err
	}
	body := resp.AppendTo(binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(frame[4:])))
	_, err = c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	return err
}
