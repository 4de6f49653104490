package logtool

import (
	"encoding/base64"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// appendText appends b for a terminal: printable UTF-8 as it is, a
// backslash doubled, every other byte (control characters, invalid UTF-8,
// format characters such as bidi overrides) as \xNN. At most limit bytes
// of b are shown (limit <= 0: all), followed by a note of how many were not.
func appendText(dst, b []byte, limit int) []byte {
	b, cut := truncate(b, limit)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == '\\':
			dst = append(dst, '\\', '\\')
		case r != utf8.RuneError && unicode.IsPrint(r):
			dst = append(dst, b[:n]...)
		default:
			for _, c := range b[:n] {
				dst = append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&15])
			}
		}
		b = b[n:]
	}
	if cut > 0 {
		dst = append(dst, "...(+"...)
		dst = strconv.AppendInt(dst, int64(cut), 10)
		dst = append(dst, " bytes)"...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// safe returns s with every rune that is not printable (control and
// format characters, invalid UTF-8) as \xNN: for file names and messages
// that reach a terminal.
func safe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b []byte
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r != utf8.RuneError && unicode.IsPrint(r) {
			b = append(b, s[:n]...)
		} else {
			for i := 0; i < n; i++ {
				b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&15])
			}
		}
		s = s[n:]
	}
	return string(b)
}

// truncate cuts b to at most limit bytes (limit <= 0: no limit), backing
// off to the start of a UTF-8 sequence so that text is not split inside a
// character. cut is how many bytes went.
func truncate(b []byte, limit int) (kept []byte, cut int) {
	if limit <= 0 || len(b) <= limit {
		return b, 0
	}
	n := limit
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(b[n]); i++ {
		n--
	}
	if !utf8.RuneStart(b[n]) || n == 0 {
		n = limit // not UTF-8 there anyway
	}
	return b[:n], len(b) - n
}

// jsonBytes is a key, value or header as JSON shows it: the text when it is
// valid UTF-8, else base64 with Encoding set.
type jsonBytes struct {
	Text     *string // nil for null
	Encoding string  // "" or "base64"
}

// makeJSONBytes converts b (nil: null), keeping at most limit bytes when
// limit > 0.
func makeJSONBytes(b []byte, limit int) jsonBytes {
	if b == nil {
		return jsonBytes{}
	}
	b, _ = truncate(b, limit)
	var s string
	enc := ""
	if utf8.Valid(b) {
		s = string(b)
	} else {
		s, enc = base64.StdEncoding.EncodeToString(b), "base64"
	}
	return jsonBytes{Text: &s, Encoding: enc}
}
