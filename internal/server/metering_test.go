package server_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"muon/internal/server/servertest"
)

func TestMetering(t *testing.T) {
	servertest.Stores(t, func(t *testing.T, e *servertest.Env) {
		const labels, rules = "/v2.0/metering/metering-labels", "/v2.0/metering/metering-label-rules"
		// do sends a request as the admin (or as project "m1", a member)
		// and checks the status and, for faults, the type.
		do := func(t *testing.T, admin bool, method, path, body string, status int, typ string) map[string]any {
			t.Helper()
			got, b := e.Do(t, method, path, "m1", admin, body)
			if got != status {
				t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
			}
			if typ != "" {
				if ft := faultType([]byte(b)); ft != typ {
					t.Fatalf("%s %s: fault %s, want %s", method, path, ft, typ)
				}
			}
			var m map[string]any
			if b != "" && status < 300 {
				if err := json.Unmarshal([]byte(b), &m); err != nil {
					t.Fatalf("body %q: %v", b, err)
				}
			}
			return m
		}
		mkRule := func(t *testing.T, label, fields string, status int, typ string) map[string]any {
			t.Helper()
			m := do(t, true, "POST", rules, fmt.Sprintf(`{"metering_label_rule": {"metering_label_id": %q, %s}}`, label, fields), status, typ)
			r, _ := m["metering_label_rule"].(map[string]any)
			return r
		}

		l := do(t, true, "POST", labels, `{"metering_label": {"name": "web", "description": "d"}}`, 201, "")["metering_label"].(map[string]any)
		id := l["id"].(string)
		if l["name"] != "web" || l["description"] != "d" || l["shared"] != false || l["project_id"] != "m1" || l["tenant_id"] != "m1" {
			t.Errorf("label %v", l)
		}

		t.Run("labels", func(t *testing.T) {
			got := do(t, true, "GET", labels+"/"+id, "", 200, "")["metering_label"].(map[string]any)
			if got["id"] != id || got["name"] != "web" {
				t.Errorf("show %v", got)
			}
			if n := len(do(t, true, "GET", labels+"?id="+id, "", 200, "")["metering_labels"].([]any)); n != 1 {
				t.Errorf("list by id: %d labels", n)
			}
			if n := len(do(t, true, "GET", labels+"?id=33", "", 200, "")["metering_labels"].([]any)); n != 0 {
				t.Errorf("list id=33: %d labels", n)
			}
			do(t, true, "GET", labels+"/00000000-0000-0000-0000-000000000000", "", 404, "MeteringLabelNotFound")
			do(t, true, "PUT", labels+"/"+id, `{"metering_label": {"name": "x"}}`, 405, "HTTPMethodNotAllowed")
			shared := do(t, true, "POST", labels, `{"metering_label": {"shared": true}}`, 201, "")["metering_label"].(map[string]any)
			if shared["shared"] != true || shared["name"] != "" {
				t.Errorf("shared label %v", shared)
			}
			do(t, true, "DELETE", labels+"/"+shared["id"].(string), "", 204, "")
		})

		t.Run("admin-only", func(t *testing.T) {
			do(t, false, "POST", labels, `{"metering_label": {"name": "x"}}`, 403, "PolicyNotAuthorized")
			do(t, false, "GET", labels+"/"+id, "", 404, "MeteringLabelNotFound")
			if n := len(do(t, false, "GET", labels, "", 200, "")["metering_labels"].([]any)); n != 0 {
				t.Errorf("a member lists %d labels", n)
			}
			do(t, false, "DELETE", labels+"/"+id, "", 404, "MeteringLabelNotFound")
			do(t, false, "POST", rules, fmt.Sprintf(`{"metering_label_rule": {"metering_label_id": %q, "direction": "ingress", "remote_ip_prefix": "10.9.0.0/24"}}`, id), 403, "PolicyNotAuthorized")
		})

		t.Run("rules", func(t *testing.T) {
			r := mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.0.0.0/24"`, 201, "")
			if r["excluded"] != false || r["direction"] != "ingress" || r["remote_ip_prefix"] != "10.0.0.0/24" ||
				r["source_ip_prefix"] != nil || r["destination_ip_prefix"] != nil || r["metering_label_id"] != id {
				t.Errorf("rule %v", r)
			}
			rid := r["id"].(string)
			got := do(t, true, "GET", rules+"/"+rid, "", 200, "")["metering_label_rule"].(map[string]any)
			if got["id"] != rid || got["remote_ip_prefix"] != "10.0.0.0/24" {
				t.Errorf("show %v", got)
			}
			if n := len(do(t, true, "GET", rules+"?id="+rid, "", 200, "")["metering_label_rules"].([]any)); n != 1 {
				t.Errorf("list by id: %d rules", n)
			}
			if n := len(do(t, false, "GET", rules, "", 200, "")["metering_label_rules"].([]any)); n != 0 {
				t.Errorf("a member lists %d rules", n)
			}
			do(t, false, "GET", rules+"/"+rid, "", 404, "MeteringLabelRuleNotFound")
			do(t, true, "PUT", rules+"/"+rid, `{"metering_label_rule": {"excluded": true}}`, 405, "HTTPMethodNotAllowed")

			// Overlaps: same label, direction and excluded only.
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.0.0.128/25"`, 409, "MeteringLabelRuleOverlaps")
			mkRule(t, id, `"direction": "egress", "remote_ip_prefix": "10.0.0.128/25"`, 201, "")
			mkRule(t, id, `"direction": "ingress", "excluded": true, "remote_ip_prefix": "10.0.0.128/25"`, 201, "")
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.0.1.0/24"`, 201, "")
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "fd02::/64"`, 201, "")
			src := mkRule(t, id, `"direction": "ingress", "source_ip_prefix": "192.168.0.0/16", "destination_ip_prefix": "10.1.0.0/16"`, 201, "")
			if src["remote_ip_prefix"] != nil || src["source_ip_prefix"] != "192.168.0.0/16" {
				t.Errorf("rule %v", src)
			}
			mkRule(t, id, `"direction": "ingress", "source_ip_prefix": "192.168.1.0/24", "destination_ip_prefix": "10.1.2.0/24"`, 409, "MeteringLabelRuleOverlaps")
			mkRule(t, id, `"direction": "ingress", "source_ip_prefix": "192.168.1.0/24", "destination_ip_prefix": "10.2.0.0/16"`, 201, "")
			mkRule(t, id, `"direction": "ingress", "source_ip_prefix": "172.16.0.0/12"`, 201, "")
			mkRule(t, id, `"direction": "ingress", "source_ip_prefix": "172.16.1.0/24"`, 409, "MeteringLabelRuleOverlaps")

			other := do(t, true, "POST", labels, `{"metering_label": {"name": "other"}}`, 201, "")["metering_label"].(map[string]any)
			mkRule(t, other["id"].(string), `"direction": "ingress", "remote_ip_prefix": "10.0.0.0/24"`, 201, "")

			// Bad input.
			mkRule(t, id, `"direction": "ingress"`, 400, "Invalid")
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.5.0.0/24", "source_ip_prefix": "10.6.0.0/24"`, 400, "Invalid")
			mkRule(t, id, `"direction": "sideways", "remote_ip_prefix": "10.5.0.0/24"`, 400, "")
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.5.0.300/24"`, 400, "")
			mkRule(t, id, `"remote_ip_prefix": "10.5.0.0/24"`, 400, "")
			mkRule(t, "00000000-0000-0000-0000-000000000000", `"direction": "ingress", "remote_ip_prefix": "10.5.0.0/24"`, 404, "MeteringLabelNotFound")

			do(t, true, "DELETE", rules+"/"+rid, "", 204, "")
			do(t, true, "DELETE", rules+"/"+rid, "", 404, "MeteringLabelRuleNotFound")
			mkRule(t, id, `"direction": "ingress", "remote_ip_prefix": "10.0.0.128/25"`, 201, "")
		})

		t.Run("delete-label-deletes-rules", func(t *testing.T) {
			do(t, true, "DELETE", labels+"/"+id, "", 204, "")
			do(t, true, "GET", labels+"/"+id, "", 404, "MeteringLabelNotFound")
			left := do(t, true, "GET", rules+"?metering_label_id="+id, "", 200, "")["metering_label_rules"].([]any)
			if len(left) != 0 {
				t.Errorf("%d rules left of a deleted label", len(left))
			}
			if n := len(do(t, true, "GET", rules, "", 200, "")["metering_label_rules"].([]any)); n != 1 {
				t.Errorf("%d rules left, want the other label's", n)
			}
			do(t, true, "DELETE", labels+"/"+id, "", 404, "MeteringLabelNotFound")
		})

		t.Run("extensions", func(t *testing.T) {
			for _, a := range []string{"metering", "metering_source_and_destination_fields"} {
				do(t, false, "GET", "/v2.0/extensions/"+a, "", 200, "")
			}
		})
	})
}
