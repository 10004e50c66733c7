package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"muon/internal/auth"
)

// RemoteConfig points the Networking API at an external Keystone, as
// keystonemiddleware's [keystone_authtoken] does.
type RemoteConfig struct {
	// AuthURL is Keystone's URL, with or without /v3.
	AuthURL string
	// The service user that validates tokens (it needs the admin or
	// service role).
	Username          string
	Password          string
	UserDomainName    string // default "Default"
	ProjectName       string // the service project; empty: unscoped
	ProjectDomainName string // default "Default"
	// CacheTTL is how long a validation is trusted; default 60 s.
	CacheTTL time.Duration
	Client   *http.Client
	Log      *slog.Logger
	Now      func() time.Time
}

// Remote validates tokens against an external Keystone, caching results.
type Remote struct {
	cfg  RemoteConfig
	base string

	mu         sync.Mutex
	svcToken   string
	svcExpires time.Time
	cache      map[[32]byte]remoteEntry
}

type remoteEntry struct {
	c     *auth.Credentials // nil: invalid
	until time.Time
}

// NewRemote builds a validator against the Keystone cfg names.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if cfg.AuthURL == "" || cfg.Username == "" {
		return nil, errors.New("identity: remote keystone needs auth_url and a service user")
	}
	if cfg.UserDomainName == "" {
		cfg.UserDomainName = "Default"
	}
	if cfg.ProjectDomainName == "" {
		cfg.ProjectDomainName = "Default"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 60 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Remote{cfg: cfg, base: trimVersion(cfg.AuthURL) + "/v3", cache: map[[32]byte]remoteEntry{}}, nil
}

// tokenBody is the part of Keystone's token the Networking API needs.
type tokenBody struct {
	Token struct {
		ExpiresAt string `json:"expires_at"`
		User      struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain ref    `json:"domain"`
		} `json:"user"`
		Project *struct {
			ID     string `json:"id"`
			Name   string `json:"name"`
			Domain ref    `json:"domain"`
		} `json:"project"`
		Domain *ref            `json:"domain"`
		System map[string]bool `json:"system"`
		Roles  []ref           `json:"roles"`
	} `json:"token"`
}

func (b *tokenBody) credentials() *auth.Credentials {
	t := &b.Token
	c := &auth.Credentials{
		UserID: t.User.ID, UserName: t.User.Name, UserDomainID: t.User.Domain.ID,
		System: t.System["all"],
	}
	if t.Project != nil {
		c.ProjectID, c.ProjectName, c.ProjectDomainID = t.Project.ID, t.Project.Name, t.Project.Domain.ID
	}
	if t.Domain != nil {
		c.DomainID, c.DomainName = t.Domain.ID, t.Domain.Name
	}
	for _, r := range t.Roles {
		c.Roles = append(c.Roles, r.Name)
	}
	return c
}

// Validate asks Keystone (GET /v3/auth/tokens) unless a recent answer is
// cached.
func (rm *Remote) Validate(ctx context.Context, tok string) (*auth.Credentials, error) {
	key := sha256.Sum256([]byte(tok))
	now := rm.cfg.Now()
	rm.mu.Lock()
	e, ok := rm.cache[key]
	rm.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.c == nil {
			return nil, ErrInvalidToken
		}
		c := *e.c
		return &c, nil
	}
	body, err := rm.check(ctx, tok)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		rm.cfg.Log.ErrorContext(ctx, "keystone token validation failed", "url", rm.base, "err", err)
		return nil, err
	}
	e = remoteEntry{until: now.Add(rm.cfg.CacheTTL)}
	if body != nil {
		e.c = body.credentials()
		if exp, perr := time.Parse(time.RFC3339Nano, body.Token.ExpiresAt); perr == nil && exp.Before(e.until) {
			e.until = exp
		}
	}
	rm.mu.Lock()
	if len(rm.cache) >= cacheMax {
		clear(rm.cache)
	}
	rm.cache[key] = e
	rm.mu.Unlock()
	if e.c == nil {
		return nil, ErrInvalidToken
	}
	c := *e.c
	return &c, nil
}

// check validates tok with the service token, renewing it once if
// Keystone refuses it.
func (rm *Remote) check(ctx context.Context, tok string) (*tokenBody, error) {
	for attempt := 0; ; attempt++ {
		svc, err := rm.serviceToken(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rm.base+"/auth/tokens?nocatalog", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Auth-Token", svc)
		req.Header.Set("X-Subject-Token", tok)
		req.Header.Set("Accept", "application/json")
		resp, err := rm.cfg.Client.Do(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			var body tokenBody
			if err := json.Unmarshal(b, &body); err != nil {
				return nil, fmt.Errorf("keystone token: %w", err)
			}
			return &body, nil
		case resp.StatusCode == http.StatusNotFound:
			return nil, ErrInvalidToken
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			continue
		default:
			return nil, fmt.Errorf("keystone: validate token: %s", resp.Status)
		}
	}
}

// serviceToken returns the service user's token, authenticating when
// there is none, it is about to expire, or renew is set.
func (rm *Remote) serviceToken(ctx context.Context, renew bool) (string, error) {
	rm.mu.Lock()
	tok, exp := rm.svcToken, rm.svcExpires
	rm.mu.Unlock()
	if !renew && tok != "" && rm.cfg.Now().Add(30*time.Second).Before(exp) {
		return tok, nil
	}
	user := map[string]any{
		"name": rm.cfg.Username, "password": rm.cfg.Password,
		"domain": map[string]string{"name": rm.cfg.UserDomainName},
	}
	a := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": user}}}
	if rm.cfg.ProjectName != "" {
		a["scope"] = map[string]any{"project": map[string]any{
			"name": rm.cfg.ProjectName, "domain": map[string]string{"name": rm.cfg.ProjectDomainName},
		}}
	}
	reqBody, _ := json.Marshal(map[string]any{"auth": a})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rm.base+"/auth/tokens?nocatalog", bytes.NewReader(reqBody))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rm.cfg.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("keystone: service user %s: %s: %s", rm.cfg.Username, resp.Status, strings.TrimSpace(string(b)))
	}
	var body tokenBody
	if err := json.Unmarshal(b, &body); err != nil {
		return "", fmt.Errorf("keystone: service token: %w", err)
	}
	tok = resp.Header.Get("X-Subject-Token")
	exp, err = time.Parse(time.RFC3339Nano, body.Token.ExpiresAt)
	if tok == "" || err != nil {
		return "", errors.New("keystone: service token: no token or expiry in the answer")
	}
	rm.mu.Lock()
	rm.svcToken, rm.svcExpires = tok, exp
	rm.mu.Unlock()
	return tok, nil
}
