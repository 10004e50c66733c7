package identity

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeToken: the decoder never panics and nothing but a token we
// signed decodes.
func FuzzDecodeToken(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() // fixed: workers rebuild the seeds
	valid := map[string]bool{}
	for _, p := range []*payload{
		{User: "u", Methods: []string{"password"}, Project: "p", Issued: now, Expires: now + 1, Audit: []string{"a"}},
		{User: "u", Methods: []string{"token", "password"}, System: true, Issued: now, Expires: now + 1, Audit: []string{"a", "b"}},
		{User: "u", Methods: []string{"password"}, Issued: now, Expires: now + 1, Audit: []string{"a"}},
	} {
		tok, err := encodeToken(key, p)
		if err != nil {
			f.Fatal(err)
		}
		valid[tok] = true
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
	}
	for _, s := range []string{"", ".", "muon1.", "muon1..", "muon1.e30.", "gAAAAABx", "muon1.bnVsbA.AAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeToken([][]byte{key}, s)
		if err != nil {
			if p != nil {
				t.Fatal("payload with an error")
			}
			return
		}
		if !valid[s] {
			t.Fatalf("forged token decoded: %q -> %+v", s, p)
		}
	})
}
