package api

import (
	"context"
	"net/http"

	"muon/internal/fault"
	"muon/internal/resource"
)

// DHCPScheduler is the backend of the dhcp_agent_scheduler extension:
// which DHCP agents host which networks.
type DHCPScheduler interface {
	DHCPAgentsOfNetwork(ctx context.Context, networkID string) ([]resource.Doc, error)
	NetworksOfDHCPAgent(ctx context.Context, agentID string) ([]resource.Doc, error)
	ScheduleNetwork(ctx context.Context, agentID, networkID string) error
	UnscheduleNetwork(ctx context.Context, agentID, networkID string) error
}

func (s *Server) routeDHCP(mux *http.ServeMux, d DHCPScheduler) {
	list := func(key string, fn func(context.Context, string) ([]resource.Doc, error)) http.HandlerFunc {
		return s.handle(func(w http.ResponseWriter, r *http.Request) error {
			out, err := fn(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			if out == nil {
				out = []resource.Doc{}
			}
			writeJSON(w, http.StatusOK, map[string]any{key: out})
			return nil
		})
	}
	mux.HandleFunc("GET /v2.0/networks/{id}/dhcp-agents", list("agents", d.DHCPAgentsOfNetwork))
	mux.HandleFunc("GET /v2.0/agents/{id}/dhcp-networks", list("networks", d.NetworksOfDHCPAgent))
	mux.HandleFunc("POST /v2.0/agents/{id}/dhcp-networks", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			NetworkID string `json:"network_id"`
		}
		if err := s.decodeJSON(w, r, &in); err != nil {
			return err
		}
		if in.NetworkID == "" {
			return fault.BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
		}
		if err := d.ScheduleNetwork(r.Context(), r.PathValue("id"), in.NetworkID); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, nil)
		return nil
	}))
	mux.HandleFunc("DELETE /v2.0/agents/{id}/dhcp-networks/{network}", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := d.UnscheduleNetwork(r.Context(), r.PathValue("id"), r.PathValue("network")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}
