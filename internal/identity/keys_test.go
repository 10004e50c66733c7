package identity

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"muon/internal/store"
)

// TestKeyRotation: after a rotation new tokens are signed by the new key
// (on every server, within keyReload; at once where a token signed by it
// arrives), tokens signed before stay valid until they expire, and a key
// goes once every token it may have signed has.
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW, Scope: tokens.Scope{ProjectName: "demo", DomainName: "Default"}}
	old, _, err := e.issue(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := e.svc.keys.verifying(ctx, false)

	// Another server of the cloud, running since before the rotation.
	other, err := New(Config{Now: e.clk.Now}, e.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, n, err := RotateKeys(ctx, e.st, time.Hour, e.clk.Now())
	if err != nil || id == "" || n != 2 {
		t.Fatalf("rotate: %q %d %v", id, n, err)
	}
	e.clk.Advance(keyReload + time.Second)
	fresh, _, err := e.issue(t, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeToken(before, fresh); err == nil {
		t.Fatal("a token issued after the rotation is signed by the old key")
	}
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		if _, err := e.svc.validate(ctx, tok); err != nil {
			t.Errorf("%s token on this server: %v", name, err)
		}
		// The other server has not reloaded on its own yet: the fresh
		// token's unknown signature makes it read the set.
		if _, err := other.validate(ctx, tok); err != nil {
			t.Errorf("%s token on the other server: %v", name, err)
		}
	}

	// Once every token the old key may have signed has expired, the next
	// rotation drops it.
	e.clk.Advance(time.Hour + keyReload)
	if _, n, err := RotateKeys(ctx, e.st, time.Hour, e.clk.Now()); err != nil || n != 2 {
		t.Fatalf("second rotation keeps %d keys (%v), want the new and the last", n, err)
	}
	e.clk.Advance(keyReload + time.Second)
	now, _ := e.svc.keys.verifying(ctx, false)
	if _, err := decodeToken(now, old); err == nil {
		t.Error("the first key still verifies after it was dropped")
	}
	if _, err := decodeToken(now, fresh); err != nil {
		t.Error("the second key no longer verifies its tokens")
	}
}

// TestAuthBodyTooLarge: a 10 MB body on POST /v3/auth/tokens is a 413,
// not a 400, and issues nothing.
func TestAuthBodyTooLarge(t *testing.T) {
	e := newEnv(t)
	body := `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "` +
		strings.Repeat("x", 10<<20) + `"}}}}}`
	resp, err := http.Post(e.srv.URL+"/v3/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("X-Subject-Token") != "" {
		t.Errorf("10 MB auth body: %d, token %q", resp.StatusCode, resp.Header.Get("X-Subject-Token"))
	}
}

// TestRevocationsPruned: revocations of expired tokens are removed, at
// most every pruneEvery, so they do not pile up.
func TestRevocationsPruned(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opts := tokens.AuthOptions{Username: "demo", DomainName: "Default", Password: demoPW, Scope: tokens.Scope{ProjectName: "demo", DomainName: "Default"}}
	admin := e.client(t, e.opts("admin", adminPW, projectScope("admin")))
	revoke := func() {
		t.Helper()
		tok, _, err := e.issue(t, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := tokens.Revoke(ctx, admin, tok).Err; err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		var n int
		e.st.View(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.Count(ctx, store.Filter{Kind: kindRevocation})
			return err
		})
		return n
	}
	for range 3 {
		revoke()
	}
	if n := count(); n != 3 {
		t.Fatalf("%d revocations, want 3", n)
	}
	// The three tokens expire; the admin's own is made fresh.
	e.clk.Advance(DefaultTokenTTL + pruneEvery)
	admin = e.client(t, e.opts("admin", adminPW, projectScope("admin")))
	revoke()
	if n := count(); n != 1 {
		t.Errorf("%d revocations after the others expired, want 1", n)
	}
}
