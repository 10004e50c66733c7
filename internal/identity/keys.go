package identity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"muon/internal/store"
)

// The token keys. The newest signs; every key kept verifies, so tokens
// signed before a rotation stay valid until they expire. Servers read the
// set again every keyReload, and at once (at most every keyRetry) when a
// token verifies with none of the keys they hold: a rotation reaches every
// server of a cloud within keyReload.

// keyReload is how often a server reads the key set again.
const keyReload = time.Minute

// keyRetry bounds how often an unknown signature makes a server read it.
const keyRetry = 5 * time.Second

// keyDoc is the stored set: the signing key first. A set written before
// rotation existed holds Key alone.
type keyDoc struct {
	Key  []byte     `json:"key,omitempty"`
	Keys []tokenKey `json:"keys,omitempty"`
}

// tokenKey is one key: its id, its bytes, when it began to sign.
type tokenKey struct {
	ID      string `json:"id"`
	Key     []byte `json:"key"`
	Created int64  `json:"created"` // unix ms
}

func (d keyDoc) keys() []tokenKey {
	if len(d.Keys) == 0 && len(d.Key) > 0 {
		return []tokenKey{{ID: "k0", Key: d.Key}}
	}
	return d.Keys
}

func newKey(now time.Time) tokenKey {
	k := tokenKey{ID: newID()[:8], Key: make([]byte, 32), Created: now.UnixMilli()}
	rand.Read(k.Key)
	return k
}

// readKeys reads the set; ErrNotFound when there is none yet.
func readKeys(ctx context.Context, tx store.Tx) ([]tokenKey, error) {
	d, err := get[keyDoc](ctx, tx, kindKey, keyID)
	if err != nil {
		return nil, err
	}
	ks := d.keys()
	if len(ks) == 0 {
		return nil, errors.New("signing keys: the set is empty")
	}
	for _, k := range ks {
		if len(k.Key) < 32 {
			return nil, fmt.Errorf("signing key %s: %d bytes, want 32", k.ID, len(k.Key))
		}
	}
	return ks, nil
}

// ensureKeys returns the set, making its first key on first use.
func ensureKeys(ctx context.Context, st store.Store, now time.Time) ([]tokenKey, error) {
	var ks []tokenKey
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		ks, err = readKeys(ctx, tx)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		return ks, err
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		if ks, err = readKeys(ctx, tx); !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ks = []tokenKey{newKey(now)}
		return put(ctx, tx, true, kindKey, keyID, "", keyDoc{Keys: ks})
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return ks, nil
}

// RotateKeys makes a new signing key. The keys before it keep verifying
// until every token they may have signed has expired (their successor's
// start, plus a server's reload delay, plus ttl, the longest token
// lifetime of the cloud's servers); older ones are dropped. It returns the
// new key's id and how many keys the set holds.
func RotateKeys(ctx context.Context, st store.Store, ttl time.Duration, now time.Time) (string, int, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	var id string
	var n int
	err := st.Update(ctx, func(tx store.Tx) error {
		ks, err := readKeys(ctx, tx)
		insert := errors.Is(err, store.ErrNotFound)
		if err != nil && !insert {
			return err
		}
		if _, err := tx.Lock(ctx, kindKey, keyID); err != nil && !insert {
			return err
		}
		k := newKey(now)
		keep := []tokenKey{k}
		for i, old := range ks {
			// ks[i] stopped signing when the key before it (or the new
			// one, for ks[0]) began.
			successor := k.Created
			if i > 0 {
				successor = ks[i-1].Created
			}
			if now.UnixMilli() < successor+(keyReload+ttl).Milliseconds() {
				keep = append(keep, old)
			}
		}
		id, n = k.ID, len(keep)
		return put(ctx, tx, insert, kindKey, keyID, "", keyDoc{Keys: keep})
	})
	return id, n, err
}

// keyring is a server's copy of the set.
type keyring struct {
	st  store.Store
	now func() time.Time

	mu     sync.Mutex
	keys   []tokenKey
	verify [][]byte // keys' bytes, for decodeToken; replaced, never changed
	loaded time.Time
	tried  time.Time
}

func newKeyring(st store.Store, now func() time.Time, ks []tokenKey) *keyring {
	r := &keyring{st: st, now: now}
	r.set(ks)
	return r
}

// set takes a key set read from the store. r.mu is held, or r is new.
func (r *keyring) set(ks []tokenKey) {
	r.keys, r.loaded = ks, r.now()
	r.verify = make([][]byte, len(ks))
	for i, k := range ks {
		r.verify[i] = k.Key
	}
}

// signing is the key to sign with, the set read again when it is old.
func (r *keyring) signing(ctx context.Context) []byte {
	r.mu.Lock()
	stale := r.now().Sub(r.loaded) > keyReload
	r.mu.Unlock()
	if stale {
		r.reload(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[0].Key
}

// verifying are the keys that may have signed a token; retry reads the set
// again first (a token signed by a key this server has not seen yet).
func (r *keyring) verifying(ctx context.Context, retry bool) ([][]byte, bool) {
	r.mu.Lock()
	again := retry && r.now().Sub(r.tried) > keyRetry || r.now().Sub(r.loaded) > keyReload
	r.mu.Unlock()
	if again {
		r.reload(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.verify, again
}

// reload reads the set; on failure the keys held stay.
func (r *keyring) reload(ctx context.Context) {
	var ks []tokenKey
	err := r.st.View(ctx, func(tx store.Tx) error {
		var err error
		ks, err = readKeys(ctx, tx)
		return err
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tried = r.now()
	if err == nil {
		r.set(ks)
	}
}
