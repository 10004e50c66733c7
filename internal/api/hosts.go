package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"muon/internal/agentapi"
	"muon/internal/auth"
	"muon/internal/fault"
)

// Hosts is the server side of the agent channel (internal/agents).
type Hosts interface {
	Heartbeat(ctx context.Context, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error)
	// HostState is the host's full state, or with delta what changed
	// after since, held up to wait while nothing does.
	HostState(ctx context.Context, host string, since int64, delta bool, wait time.Duration) (agentapi.State, error)
	ReportStatus(ctx context.Context, host string, st agentapi.Status) error
}

func (s *Server) routeHosts(mux *http.ServeMux) {
	mux.HandleFunc("POST /muon/v1/agents/heartbeat", s.handle(s.heartbeat))
	mux.HandleFunc("GET /muon/v1/hosts/{host}/state", s.handle(s.hostState))
	mux.HandleFunc("POST /muon/v1/hosts/{host}/status", s.handle(s.hostStatus))
}

func adminOnly(r *http.Request, rule string) error {
	if !auth.FromContext(r.Context()).Admin() {
		return fault.Forbidden("PolicyNotAuthorized", "(rule:%s) is disallowed by policy", rule)
	}
	return nil
}

// decodeJSON reads one JSON object of the body into v: garbage, a body
// cut short or anything after the object is a 400.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fault.BadRequest("Malformed request body: %s", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.BadRequest("Malformed request body: data after the JSON object")
	}
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "report_agent_state"); err != nil {
		return err
	}
	var hb agentapi.Heartbeat
	if err := s.decodeJSON(w, r, &hb); err != nil {
		return err
	}
	reply, err := s.hosts.Heartbeat(r.Context(), hb)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

// hostState answers GET /muon/v1/hosts/{host}/state[?since=R&wait=S].
func (s *Server) hostState(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "get_host_state"); err != nil {
		return err
	}
	q := r.URL.Query()
	for k := range q {
		if k != "since" && k != "wait" {
			return fault.BadRequest("Unknown query parameter '%s'.", k)
		}
	}
	num := func(name string) (int64, bool, error) {
		v, ok := q[name]
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v[len(v)-1], 10, 64)
		if err != nil || n < 0 {
			return 0, false, fault.BadRequest("%s must be a non-negative integer, not '%s'", name, v[len(v)-1])
		}
		return n, true, nil
	}
	since, delta, err := num("since")
	if err != nil {
		return err
	}
	wait, _, err := num("wait")
	if err != nil {
		return err
	}
	if wait > 60 {
		wait = 60
	}
	st, err := s.hosts.HostState(r.Context(), r.PathValue("host"), since, delta, time.Duration(wait)*time.Second)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) hostStatus(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "update_host_status"); err != nil {
		return err
	}
	var st agentapi.Status
	if err := s.decodeJSON(w, r, &st); err != nil {
		return err
	}
	if err := s.hosts.ReportStatus(r.Context(), r.PathValue("host"), st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
