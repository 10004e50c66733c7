package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"muon/internal/agentapi"
)

// maxBody bounds what the agent reads from the server in one answer.
const maxBody = 256 << 20

// Client speaks the agent channel (agentapi) to one server.
type Client struct {
	Base  string // http://host:9696
	Token string // X-Auth-Token; empty: noauth admin headers
	HTTP  *http.Client
}

// NewClient is a client of base; token empty means noauth.
func NewClient(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{}}
}

// Header sets the credentials on a request.
func (c *Client) Header(h http.Header) {
	if c.Token != "" {
		h.Set("X-Auth-Token", c.Token)
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
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.Header(req.Header)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
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

// Status reports ports wired or not.
func (c *Client) Status(ctx context.Context, host string, s agentapi.Status) error {
	return c.Do(ctx, http.MethodPost, "/muon/v1/hosts/"+url.PathEscape(host)+"/status", s, nil)
}

// Check refuses a state the agent cannot trust: another host's, a
// revision that goes back, members without ids.
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
	for _, n := range st.Networks {
		if n.ID == "" {
			return errors.New("a network without an id")
		}
	}
	for _, p := range st.Ports {
		if p.ID == "" || p.NetworkID == "" {
			return errors.New("a port without an id or network")
		}
	}
	return nil
}
