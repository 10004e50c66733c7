package identity

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// payload is what a token carries. Roles are not in it: they are looked
// up when the token is validated, so a removed assignment takes effect at
// once.
type payload struct {
	User    string   `json:"u"`
	Methods []string `json:"m"`
	Project string   `json:"p,omitempty"`
	Domain  string   `json:"d,omitempty"`
	System  bool     `json:"s,omitempty"`
	Issued  int64    `json:"i"` // unix ms
	Expires int64    `json:"e"` // unix ms
	// Audit is the token's audit id, then the chain's (the token it was
	// made from), as Keystone's audit_ids.
	Audit []string `json:"a"`
}

// tokenPrefix versions the format and domain-separates the signature.
const tokenPrefix = "muon1."

// maxTokenLen bounds what the decoder looks at.
const maxTokenLen = 2048

// errMalformed is any token that does not decode or verify.
var errMalformed = errors.New("malformed token")

// encodeToken signs p: "muon1.<base64url payload>.<base64url HMAC>".
func encodeToken(key []byte, p *payload) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	body := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(sign(key, body)), nil
}

func sign(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// decodeToken verifies a token's signature, by any of keys, and shape;
// it says nothing of expiry or revocation.
func decodeToken(keys [][]byte, tok string) (*payload, error) {
	if len(tok) > maxTokenLen || !strings.HasPrefix(tok, tokenPrefix) {
		return nil, errMalformed
	}
	i := strings.LastIndexByte(tok, '.')
	if i < len(tokenPrefix) {
		return nil, errMalformed
	}
	body, sig64 := tok[:i], tok[i+1:]
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sig64)
	if err != nil || !slices.ContainsFunc(keys, func(k []byte) bool { return hmac.Equal(sig, sign(k, body)) }) {
		return nil, errMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body[len(tokenPrefix):])
	if err != nil {
		return nil, errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var p payload
	if err := dec.Decode(&p); err != nil || dec.More() {
		return nil, errMalformed
	}
	scopes := 0
	for _, set := range []bool{p.Project != "", p.Domain != "", p.System} {
		if set {
			scopes++
		}
	}
	if p.User == "" || len(p.Methods) == 0 || len(p.Audit) == 0 || len(p.Audit) > 2 ||
		scopes > 1 || p.Expires <= p.Issued {
		return nil, errMalformed
	}
	return &p, nil
}

// newID is a Keystone-style id: a UUID4 as 32 hex digits.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b)
}

// newAuditID is Keystone's: 16 random bytes, base64url without padding.
func newAuditID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
