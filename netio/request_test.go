package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestParseRequest(t *testing.T) {
	f := func(frame []byte, want Request, wantErr error) {
		t.Helper()
		var got Request
		err := parseRequest(&got, frame)
		if !errors.Is(err, wantErr) {
			t.Fatalf("parseRequest(%x): err %v, want %v", frame, err, wantErr)
		}
		if err != nil {
			return
		}
		if got.APIKey != want.APIKey || got.APIVersion != want.APIVersion || got.CorrelationID != want.CorrelationID ||
			got.ClientID != want.ClientID || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("parseRequest(%x) = %+v, want %+v", frame, got, want)
		}
	}
	frame := func(key, ver int16, corr int32, clientID *string, body []byte) []byte {
		return appendReq(nil, key, ver, corr, clientID, body)[4:]
	}
	f(frame(18, 3, 42, strp("kgo"), []byte{0, 1, 2}), Request{APIKey: 18, APIVersion: 3, CorrelationID: 42, ClientID: "kgo", Body: []byte{0, 1, 2}}, nil)
	f(frame(0, 9, -1, nil, []byte("x")), Request{APIKey: 0, APIVersion: 9, CorrelationID: -1, Body: []byte("x")}, nil)
	f(frame(1, 12, 7, strp(""), nil), Request{APIKey: 1, APIVersion: 12, CorrelationID: 7}, nil)
	f(nil, Request{}, errShortHeader)
	f(make([]byte, 8), Request{}, errShortHeader)
	f(make([]byte, 9), Request{}, errShortHeader)
	f(frame(1, 0, 0, strp("abc"), nil)[:12], Request{}, errShortHeader)
	bad := frame(1, 0, 0, strp("ab"), nil)
	binary.BigEndian.PutUint16(bad[8:], 0xfffe) // -2
	f(bad, Request{}, errBadClientIDLen)
}

// FuzzParseRequest: the header parser never panics, and what it accepts
// re-encodes to the same frame.
func FuzzParseRequest(f *testing.F) {
	f.Add(appendReq(nil, 18, 3, 1, strp("kgo"), []byte{0})[4:])
	f.Add(appendReq(nil, 0, 9, 2, nil, []byte("records"))[4:])
	f.Add([]byte{})
	f.Add(make([]byte, 9))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var req Request
		if err := parseRequest(&req, frame); err != nil {
			return
		}
		clientID := &req.ClientID
		if int16(binary.BigEndian.Uint16(frame[8:])) == -1 {
			clientID = nil
		}
		again := appendReq(nil, req.APIKey, req.APIVersion, req.CorrelationID, clientID, req.Body)[4:]
		if !bytes.Equal(again, frame) {
			t.Fatalf("frame %x re-encodes as %x", frame, again)
		}
		if len(req.Body) > 0 && &req.Body[len(req.Body)-1] != &frame[len(frame)-1] {
			t.Fatal("Body does not alias the frame's tail")
		}
	})
}
