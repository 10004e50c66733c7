package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"muon/internal/server"
	"muon/internal/server/servertest"
)

// TestPolicyIsTheAuthority: who may do what is policy's to say, decided
// where the record is: an operator's policy file is obeyed for
// attributes and for features' routes alike, Neutron's advsvc reads other
// projects' ports, and a network's owner sees and may delete the ports
// other projects have on it.
func TestPolicyIsTheAuthority(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		n, _ := netWithSubnet(t, e.Client("pA", false), "10.80.0.0/24")
		pa := mkPort(t, e.Client("pA", false), body{"network_id": n.ID})
		mac := `{"port": {"mac_address": "fa:16:3e:12:34:56"}}`

		t.Run("defaults", func(t *testing.T) {
			if code, out := e.Do(t, "PUT", "/v2.0/ports/"+pa.ID, "pA", false, mac); code != 403 || !strings.Contains(out, "update_port:mac_address") {
				t.Errorf("a member changing a MAC: %d %s, want 403", code, out)
			}
			if code, out := e.Do(t, "GET", "/v2.0/networks/"+n.ID+"/dhcp-agents", "pA", false, ""); code != 403 {
				t.Errorf("a member listing DHCP agents: %d %s, want 403", code, out)
			}
			if code, out := e.Do(t, "GET", "/v2.0/ports/"+pa.ID, "pX", false, ""); code != 404 {
				t.Errorf("another project reading the port: %d %s, want 404", code, out)
			}
		})

		t.Run("advsvc", func(t *testing.T) {
			code, out := e.Do(t, "GET", "/v2.0/ports/"+pa.ID, "svc", false, "", "X-Roles", "advsvc")
			if code != 200 || !strings.Contains(out, pa.ID) {
				t.Errorf("advsvc reading another project's port: %d %s", code, out)
			}
			code, out = e.Do(t, "GET", "/v2.0/ports?network_id="+n.ID, "svc", false, "", "X-Roles", "advsvc")
			if code != 200 || !strings.Contains(out, pa.ID) {
				t.Errorf("advsvc listing another project's ports: %d %s", code, out)
			}
		})

		t.Run("network-owner", func(t *testing.T) {
			shared := mkNet(t, e.Admin(), body{"shared": true})
			// The admin's shared network; a port of project pB on it.
			code, out := e.Do(t, "POST", "/v2.0/ports", "pB", false, fmt.Sprintf(`{"port": {"network_id": %q}}`, shared.ID))
			if code != 201 {
				t.Fatalf("port on a shared network: %d %s", code, out)
			}
			id := between(out, `"id":"`, `"`)
			// pC, who does not own the network, sees nothing of it.
			if code, _ := e.Do(t, "GET", "/v2.0/ports/"+id, "pC", false, ""); code != 404 {
				t.Errorf("a stranger reading pB's port: %d", code)
			}
			// The owner of a network sees pB's port on it and may delete it.
			own := mkNet(t, e.Client("pO", false), body{})
			e.Do(t, "PUT", "/v2.0/networks/"+own.ID, "admin", true, `{"network": {"shared": true}}`)
			code, out = e.Do(t, "POST", "/v2.0/ports", "pB", false, fmt.Sprintf(`{"port": {"network_id": %q}}`, own.ID))
			if code != 201 {
				t.Fatalf("pB's port on pO's shared network: %d %s", code, out)
			}
			id = between(out, `"id":"`, `"`)
			if code, out := e.Do(t, "GET", "/v2.0/ports/"+id, "pO", false, ""); code != 200 {
				t.Errorf("the network owner reading pB's port: %d %s", code, out)
			}
			if code, out := e.Do(t, "PUT", "/v2.0/ports/"+id, "pO", false, `{"port": {"name": "mine"}}`); code != 403 {
				t.Errorf("the network owner renaming pB's port: %d %s, want 403", code, out)
			}
			if code, out := e.Do(t, "DELETE", "/v2.0/ports/"+id, "pO", false, ""); code != 204 {
				t.Errorf("the network owner deleting pB's port: %d %s, want 204", code, out)
			}
		})
	})

	t.Run("operator-policy", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "policy.yaml")
		if err := os.WriteFile(file, []byte("\"update_port:mac_address\": \"rule:admin_or_owner\"\n\"get_dhcp-agents\": \"rule:regular_user\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e := servertest.Start(t, "sqlite", func(c *server.Config) { c.PolicyFile = file })
		n := mkNet(t, e.Client("pA", false), body{})
		pa := mkPort(t, e.Client("pA", false), body{"network_id": n.ID})
		code, out := e.Do(t, "PUT", "/v2.0/ports/"+pa.ID, "pA", false, `{"port": {"mac_address": "fa:16:3e:12:34:56"}}`)
		if code != 200 || !strings.Contains(out, "fa:16:3e:12:34:56") {
			t.Errorf("the owner changing its MAC under the operator's policy: %d %s", code, out)
		}
		if code, out := e.Do(t, "GET", "/v2.0/networks/"+n.ID+"/dhcp-agents", "pA", false, ""); code != 200 {
			t.Errorf("a member listing DHCP agents under the operator's policy: %d %s", code, out)
		}
	})
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
