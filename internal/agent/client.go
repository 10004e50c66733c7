package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"muon/internal/agentapi"
)

// maxBody bounds what the agent reads from the server in one answer.
const maxBody = 256 << 20

// Client speaks the agent channel (agentapi) to one server.
type Client struct {
	Base  string // http://host:9696
	Token string // X-Auth-Token; empty: noauth admin headers (or Auth's)
	// Auth, when set, gives the token (refresh: the last one was refused).
	Auth func(ctx context.Context, refresh bool) (string, error)
	HTTP *http.Client
}

// NewClient is a client of base; token empty means noauth.
func NewClient(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}
}

// Header sets the credentials on a request.
func (c *Client) Header(h http.Header) {
	c.header(h, c.Token)
}

func (c *Client) header(h http.Header, token string) {
	if token != "" {
		h.Set("X-Auth-Token", token)
		return
	}
	h.Set("X-Roles", "admin")
	h.Set("X-Project-Id", "admin")
	h.Set("X-User-Id", "muon-agent")
}

// StatusError is an answer other than the one expected.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string { return fmt.Sprintf("server answered %d: %s", e.Code, e.Body) }

// Do sends a JSON request and decodes a JSON answer into out (when not
// nil); any status but 2xx is a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	var resp *http.Response
	for try := range 2 {
		req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json")
		token := c.Token
		if c.Auth != nil {
			if token, err = c.Auth(ctx, try > 0); err != nil {
				return fmt.Errorf("authenticate: %w", err)
			}
		}
		c.header(req.Header, token)
		if resp, err = c.HTTP.Do(req); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusUnauthorized || c.Auth == nil || try > 0 {
			break
		}
		resp.Body.Close()
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxBody))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", method, path, err)
	}
	return nil
}

// Heartbeat registers or refreshes the agent.
func (c *Client) Heartbeat(ctx context.Context, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error) {
	var r agentapi.HeartbeatReply
	err := c.Do(ctx, http.MethodPost, "/muon/v1/agents/heartbeat", hb, &r)
	return r, err
}

// State reads host's full desired state (since < 0), or what changed
// after revision since, held up to wait while nothing does. The answer
// is checked: a malformed one is an error, not a state.
func (c *Client) State(ctx context.Context, host string, since int64, wait time.Duration) (agentapi.State, error) {
	path := "/muon/v1/hosts/" + url.PathEscape(host) + "/state"
	if since >= 0 {
		path += "?since=" + strconv.FormatInt(since, 10) + "&wait=" + strconv.Itoa(int(wait/time.Second))
	}
	var st agentapi.State
	if err := c.Do(ctx, http.MethodGet, path, nil, &st); err != nil {
		return agentapi.State{}, err
	}
	if err := Check(st, host, since); err != nil {
		return agentapi.State{}, fmt.Errorf("GET %s: %w", path, err)
	}
	return st, nil
}

// Status reports observed state, by section.
func (c *Client) Status(ctx context.Context, host string, s agentapi.Status) error {
	return c.Do(ctx, http.MethodPost, "/muon/v1/hosts/"+url.PathEscape(host)+"/status", s, nil)
}

// Check refuses a state the agent cannot trust: another host's, a
// revision that goes back. (What is inside a section is its driver's to
// check.)
func Check(st agentapi.State, host string, since int64) error {
	if st.Resync {
		return nil
	}
	if st.Host != "" && st.Host != host {
		return fmt.Errorf("state for host %q, not %q", st.Host, host)
	}
	if st.Revision < 0 {
		return fmt.Errorf("negative revision %d", st.Revision)
	}
	if since >= 0 && st.Delta && st.Revision < since {
		return fmt.Errorf("delta at revision %d goes back from %d", st.Revision, since)
	}
	return nil
}

// PasswordAuth logs in to Keystone with opts (gophercloud's password
// authentication) and keeps the token until the server refuses it.
func PasswordAuth(opts gophercloud.AuthOptions) func(context.Context, bool) (string, error) {
	var (
		mu    sync.Mutex
		token string
	)
	return func(ctx context.Context, refresh bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if token != "" && !refresh {
			return token, nil
		}
		p, err := openstack.AuthenticatedClient(ctx, opts)
		if err != nil {
			return "", err
		}
		token = p.Token()
		return token, nil
	}
}
