package policy

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"muon/internal/auth"
	"muon/internal/fault"
)

var (
	adminCred   = &auth.Credentials{UserID: "u-admin", ProjectID: "admin-proj", Roles: []string{"admin", "member", "reader"}}
	memberA     = &auth.Credentials{UserID: "u-a", ProjectID: "A", Roles: []string{"member", "reader"}}
	memberOnlyA = &auth.Credentials{UserID: "u-a2", ProjectID: "A", Roles: []string{"Member"}}
	readerA     = &auth.Credentials{UserID: "u-ra", ProjectID: "A", Roles: []string{"reader"}}
	fooA        = &auth.Credentials{UserID: "u-fa", ProjectID: "A", Roles: []string{"foo"}}
	memberB     = &auth.Credentials{UserID: "u-b", ProjectID: "B", Roles: []string{"member", "reader"}}
	memberC     = &auth.Credentials{UserID: "u-c", ProjectID: "C", Roles: []string{"member", "reader"}}
	advsvcCred  = &auth.Credentials{UserID: "u-svc", ProjectID: "svc", Roles: []string{"advsvc"}}
	systemAdmin = &auth.Credentials{UserID: "u-sys", Roles: []string{"admin"}, System: true}
	anonymous   = &auth.Credentials{}
)

func TestEval(t *testing.T) {
	target := map[string]any{
		"project_id": "A", "tenant_id": "A", "network:tenant_id": "N", "network:project_id": "N",
		"shared": true, "router:external": "False", "name": "a b", "mtu": 1450,
		"device_owner": "network:dhcp", "nested": map[string]any{"owner": "A"}, "none": nil,
	}
	tests := []struct {
		name string
		rule string
		cred *auth.Credentials
		want bool
	}{
		{"always", "@", anonymous, true},
		{"empty", "", anonymous, true},
		{"never", "!", adminCred, false},
		{"role", "role:admin", adminCred, true},
		{"role-case-insensitive", "role:ADMIN", adminCred, true},
		{"role-cred-case-insensitive", "role:member", memberOnlyA, true},
		{"role-missing", "role:admin", memberA, false},
		{"role-substituted", "role:%(name)s", &auth.Credentials{Roles: []string{"A B"}}, true},
		{"project-match", "project_id:%(project_id)s", memberA, true},
		{"project-mismatch", "project_id:%(project_id)s", memberB, false},
		{"tenant-alias", "tenant_id:%(tenant_id)s", memberA, true},
		{"missing-target-key", "project_id:%(nope)s", memberA, false},
		{"empty-cred-never-matches", "project_id:%(empty)s", anonymous, false},
		{"network-owner", "tenant_id:%(network:tenant_id)s", &auth.Credentials{ProjectID: "N"}, true},
		{"network-owner-other", "project_id:%(network:project_id)s", memberA, false},
		{"dotted-target", "project_id:%(nested.owner)s", memberA, true},
		{"user-id", "user_id:u-a", memberA, true},
		{"system-scope", "system_scope:all", systemAdmin, true},
		{"system-scope-project-token", "system_scope:all", adminCred, false},
		{"is-admin", "is_admin:True", adminCred, true},
		{"is-admin-false", "is_admin:True", memberA, false},
		{"roles-list", "roles:member", memberA, true},
		{"literal-left-bool", "True:%(shared)s", anonymous, true},
		{"literal-left-quoted", "'a b':%(name)s", anonymous, true},
		{"literal-left-number", "1450:%(mtu)s", anonymous, true},
		{"substitution-left", "%(project_id)s:%(tenant_id)s", anonymous, true},
		{"substitution-left-mismatch", "%(project_id)s:%(network:tenant_id)s", anonymous, false},
		{"quoted-right", "project_id:'A'", memberA, true},
		{"field-bool", "field:networks:shared=True", anonymous, true},
		{"field-bool-spelling", "field:networks:shared=true", anonymous, true},
		{"field-bool-false", "field:networks:shared=False", anonymous, false},
		{"field-string-bool", "field:networks:router:external=False", anonymous, true},
		{"field-missing", "field:networks:is_default=True", anonymous, false},
		{"field-nil", "field:networks:none=None", anonymous, false},
		{"field-number", "field:networks:mtu=1450", anonymous, true},
		{"field-regexp", "field:port:device_owner=~^network:", anonymous, true},
		{"field-regexp-anchored", "field:port:device_owner=~dhcp", anonymous, false},
		{"and", "role:member and project_id:%(project_id)s", memberA, true},
		{"and-false", "role:member and project_id:%(project_id)s", readerA, false},
		{"or", "role:admin or project_id:%(project_id)s", readerA, true},
		{"not", "not role:admin", memberA, true},
		{"precedence", "role:admin or role:member and project_id:%(project_id)s", memberB, false},
		{"rule-ref", "rule:context_is_admin", adminCred, true},
		{"rule-undefined", "rule:nope", adminCred, false},
	}
	e, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.root.eval(&env{rules: e.rules, target: target, cred: tt.cred}); got != tt.want {
				t.Errorf("%q = %v, want %v", tt.rule, got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		want      string
	}{
		{"syntax", map[string]string{"get_network": "role:admin or"}, `rule "get_network": at offset 13`},
		{"cycle", map[string]string{"a": "rule:b", "b": "role:x or rule:a"}, "cycle: a -> b -> a"},
		{"self-cycle", map[string]string{"default": "rule:default"}, "cycle: default -> default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.overrides)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Fixtures for the defaults matrix.
var (
	netA = map[string]any{"id": "n1", "project_id": "A", "tenant_id": "A", "shared": false, "router:external": false}
	// netShared belongs to A and is shared with everyone.
	netShared = map[string]any{"id": "n2", "project_id": "A", "tenant_id": "A", "shared": true, "router:external": false}
	// netExt belongs to the admin project and is external.
	netExt = map[string]any{"id": "n3", "project_id": "admin-proj", "tenant_id": "admin-proj", "shared": false, "router:external": true}
	// portBonA is B's port on A's shared network.
	portBonA = map[string]any{
		"id": "p1", "project_id": "B", "tenant_id": "B", "network_id": "n2",
		"network:project_id": "A", "network:tenant_id": "A", "shared": true, "device_owner": "compute:nova",
	}
	// portDHCP is a network: port of A's own network.
	portDHCP = map[string]any{
		"project_id": "A", "tenant_id": "A", "network:project_id": "A", "network:tenant_id": "A",
		"shared": false, "device_owner": "network:dhcp",
	}
	// subnetA is a subnet of A's private network.
	subnetA = map[string]any{"project_id": "A", "tenant_id": "A", "network:project_id": "A", "network:tenant_id": "A", "shared": false}
	// subnetShared is a subnet of A's shared network.
	subnetShared = map[string]any{"project_id": "A", "tenant_id": "A", "network:project_id": "A", "network:tenant_id": "A", "shared": true}
	// subnetBonA is one B would create on A's shared network.
	subnetBonA = map[string]any{"project_id": "B", "tenant_id": "B", "network:project_id": "A", "network:tenant_id": "A", "shared": true}
	quotaA     = map[string]any{"project_id": "A", "tenant_id": "A"}
	rbacStar   = map[string]any{"project_id": "A", "tenant_id": "A", "target_tenant": "*", "target_project": "*"}
	rbacB      = map[string]any{"project_id": "A", "tenant_id": "A", "target_tenant": "B", "target_project": "B"}
	poolShared = map[string]any{"project_id": "admin-proj", "tenant_id": "admin-proj", "shared": true}
	scopeA     = map[string]any{"project_id": "A", "tenant_id": "A", "shared": false}
)

func TestDefaults(t *testing.T) {
	e, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Columns: admin, member of A, reader of A, role foo in A, member of B.
	type row struct {
		name   string
		action string
		target map[string]any
		want   [5]bool
	}
	creds := [5]*auth.Credentials{adminCred, memberA, readerA, fooA, memberB}
	const y, n = true, false
	rows := []row{
		{"net-create", "create_network", netA, [5]bool{y, y, n, n, n}},
		{"net-create-shared", "create_network:shared", netA, [5]bool{y, n, n, n, n}},
		{"net-create-external", "create_network:router:external", netA, [5]bool{y, n, n, n, n}},
		{"net-create-provider", "create_network:provider:network_type", netA, [5]bool{y, n, n, n, n}},
		{"net-create-segments", "create_network:segments", netA, [5]bool{y, n, n, n, n}},
		{"net-create-is-default", "create_network:is_default", netA, [5]bool{y, n, n, n, n}},
		{"net-get", "get_network", netA, [5]bool{y, y, y, n, n}},
		{"net-get-shared", "get_network", netShared, [5]bool{y, y, y, y, y}},
		{"net-get-external", "get_network", netExt, [5]bool{y, y, y, y, y}},
		{"net-get-provider", "get_network:provider:segmentation_id", netA, [5]bool{y, n, n, n, n}},
		{"net-get-segments", "get_network:segments", netA, [5]bool{y, n, n, n, n}},
		{"net-get-router-external", "get_network:router:external", netExt, [5]bool{y, y, y, y, y}},
		{"net-update", "update_network", netA, [5]bool{y, y, n, n, n}},
		{"net-update-shared-by-non-owner", "update_network", netShared, [5]bool{y, y, n, n, n}},
		{"net-update-shared-attr", "update_network:shared", netA, [5]bool{y, n, n, n, n}},
		{"net-update-external-attr", "update_network:router:external", netA, [5]bool{y, n, n, n, n}},
		{"net-delete", "delete_network", netA, [5]bool{y, y, n, n, n}},
		{"net-delete-external", "delete_network", netExt, [5]bool{y, n, n, n, n}},

		{"subnet-create", "create_subnet", subnetA, [5]bool{y, y, n, n, n}},
		{"subnet-create-on-shared-net", "create_subnet", subnetBonA, [5]bool{y, y, n, n, n}},
		{"subnet-create-segment", "create_subnet:segment_id", subnetA, [5]bool{y, n, n, n, n}},
		{"subnet-create-service-types", "create_subnet:service_types", subnetA, [5]bool{y, n, n, n, n}},
		{"subnet-get", "get_subnet", subnetA, [5]bool{y, y, y, n, n}},
		{"subnet-get-shared", "get_subnet", subnetShared, [5]bool{y, y, y, y, y}},
		{"subnet-get-segment", "get_subnet:segment_id", subnetA, [5]bool{y, n, n, n, n}},
		{"subnet-update", "update_subnet", subnetShared, [5]bool{y, y, n, n, n}},
		{"subnet-delete", "delete_subnet", subnetA, [5]bool{y, y, n, n, n}},

		{"port-create-own", "create_port", portDHCP, [5]bool{y, y, n, n, n}},
		{"port-create-on-shared", "create_port", portBonA, [5]bool{y, n, n, n, y}},
		// Attribute rules stand beside create_port, which refuses reader and foo.
		{"port-create-fixed-ips-shared", "create_port:fixed_ips:subnet_id", portBonA, [5]bool{y, y, y, y, y}},
		{"port-create-ip-address-shared", "create_port:fixed_ips:ip_address", portBonA, [5]bool{y, y, n, n, n}},
		{"port-create-mac-shared", "create_port:mac_address", portBonA, [5]bool{y, y, n, n, n}},
		{"port-create-aap-shared", "create_port:allowed_address_pairs", portBonA, [5]bool{y, y, n, n, n}},
		{"port-create-port-security", "create_port:port_security_enabled", portBonA, [5]bool{y, y, n, n, n}},
		{"port-create-compute-owner", "create_port:device_owner", portBonA, [5]bool{y, y, y, y, y}},
		{"port-create-network-owner", "create_port:device_owner", portDHCP, [5]bool{y, y, n, n, n}},
		{"port-create-binding-host", "create_port:binding:host_id", portDHCP, [5]bool{y, n, n, n, n}},
		{"port-create-binding-profile", "create_port:binding:profile", portDHCP, [5]bool{y, n, n, n, n}},
		{"port-get-other-on-my-net", "get_port", portBonA, [5]bool{y, y, y, n, y}},
		{"port-get-vif-type", "get_port:binding:vif_type", portBonA, [5]bool{y, n, n, n, n}},
		{"port-get-resource-request", "get_port:resource_request", portBonA, [5]bool{y, n, n, n, n}},
		{"port-update", "update_port", portBonA, [5]bool{y, n, n, n, y}},
		{"port-update-mac", "update_port:mac_address", portDHCP, [5]bool{y, n, n, n, n}},
		{"port-update-fixed-ips", "update_port:fixed_ips:ip_address", portDHCP, [5]bool{y, y, n, n, n}},
		{"port-update-binding-host", "update_port:binding:host_id", portDHCP, [5]bool{y, n, n, n, n}},
		{"port-delete-other-on-my-net", "delete_port", portBonA, [5]bool{y, y, n, n, y}},

		{"pool-create", "create_subnetpool", scopeA, [5]bool{y, y, n, n, n}},
		{"pool-create-shared", "create_subnetpool:shared", scopeA, [5]bool{y, n, n, n, n}},
		{"pool-get-shared", "get_subnetpool", poolShared, [5]bool{y, y, y, y, y}},
		{"pool-get-own", "get_subnetpool", scopeA, [5]bool{y, y, y, n, n}},
		{"pool-update-default", "update_subnetpool:is_default", scopeA, [5]bool{y, n, n, n, n}},
		{"pool-add-prefixes", "add_prefixes", scopeA, [5]bool{y, y, n, n, n}},
		{"pool-onboard", "onboard_network_subnets", scopeA, [5]bool{y, y, n, n, n}},
		{"scope-create", "create_address_scope", scopeA, [5]bool{y, y, n, n, n}},
		{"scope-create-shared", "create_address_scope:shared", scopeA, [5]bool{y, n, n, n, n}},
		{"scope-get", "get_address_scope", scopeA, [5]bool{y, y, y, n, n}},
		{"scope-delete", "delete_address_scope", scopeA, [5]bool{y, y, n, n, n}},

		{"segment-get", "get_segment", netA, [5]bool{y, n, n, n, n}},
		{"segment-create", "create_segment", netA, [5]bool{y, n, n, n, n}},
		{"ip-availability", "get_network_ip_availability", netA, [5]bool{y, n, n, n, n}},

		{"rbac-create", "create_rbac_policy", rbacB, [5]bool{y, y, n, n, n}},
		{"rbac-target-project", "create_rbac_policy:target_tenant", rbacB, [5]bool{y, y, y, y, y}},
		{"rbac-target-wildcard", "create_rbac_policy:target_tenant", rbacStar, [5]bool{y, n, n, n, n}},
		{"rbac-update-wildcard", "update_rbac_policy:target_tenant", rbacStar, [5]bool{y, n, n, n, n}},
		{"rbac-get", "get_rbac_policy", rbacB, [5]bool{y, y, y, n, n}},
		{"rbac-delete", "delete_rbac_policy", rbacB, [5]bool{y, y, n, n, n}},

		{"quota-get", "get_quota", quotaA, [5]bool{y, y, y, n, n}},
		{"quota-update", "update_quota", quotaA, [5]bool{y, n, n, n, n}},
		{"quota-delete", "delete_quota", quotaA, [5]bool{y, n, n, n, n}},

		{"unknown-falls-to-default", "frobnicate_network", netA, [5]bool{y, y, n, n, n}},
	}
	names := [5]string{"admin", "member-A", "reader-A", "foo-A", "member-B"}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if !e.Has(r.action) && !strings.HasPrefix(r.name, "unknown") {
				t.Fatalf("no default rule %q", r.action)
			}
			for i, c := range creds {
				if got := e.Enforce(r.action, r.target, c); got != r.want[i] {
					t.Errorf("%s: %s = %v, want %v", names[i], r.action, got, r.want[i])
				}
			}
		})
	}
}

func TestDefaultsOtherCallers(t *testing.T) {
	e, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		action string
		target map[string]any
		cred   *auth.Credentials
		want   bool
	}{
		{"outsider-cannot-see-port", "get_port", portBonA, memberC, false},
		{"outsider-cannot-delete-port", "delete_port", portBonA, memberC, false},
		{"advsvc-sees-port", "get_port", portBonA, advsvcCred, true},
		{"advsvc-sets-mac", "update_port:mac_address", portBonA, advsvcCred, true},
		{"system-admin", "delete_network", netA, systemAdmin, true},
		{"anonymous-private-net", "get_network", netA, anonymous, false},
		{"anonymous-external-net", "get_network", netExt, anonymous, true},
		{"nil-cred", "get_network", netA, nil, false},
		{"member-role-any-case", "create_network", netA, memberOnlyA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.Enforce(tt.action, tt.target, tt.cred); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.action, got, tt.want)
			}
		})
	}
}

// TestDefaultsCoverage pins the rule names the API layer relies on.
func TestDefaultsCoverage(t *testing.T) {
	d := Defaults()
	for _, name := range []string{
		"context_is_admin", "admin_or_owner", "admin_only", "regular_user", "shared", "external", "default",
		"admin_or_network_owner", "network_owner", "admin_owner_or_network_owner",
		"create_network", "create_network:shared", "create_network:router:external", "create_network:is_default",
		"create_network:segments", "create_network:provider:network_type", "create_network:provider:physical_network",
		"create_network:provider:segmentation_id", "get_network", "get_network:router:external", "get_network:segments",
		"get_network:provider:network_type", "get_network:provider:physical_network", "get_network:provider:segmentation_id",
		"update_network", "update_network:shared", "update_network:router:external", "update_network:segments",
		"update_network:provider:network_type", "update_network:provider:physical_network",
		"update_network:provider:segmentation_id", "delete_network",
		"create_subnet", "create_subnet:segment_id", "create_subnet:service_types", "get_subnet", "get_subnet:segment_id",
		"update_subnet", "update_subnet:segment_id", "update_subnet:service_types", "delete_subnet",
		"create_subnetpool", "create_subnetpool:shared", "create_subnetpool:is_default", "get_subnetpool",
		"update_subnetpool", "update_subnetpool:is_default", "delete_subnetpool", "onboard_network_subnets",
		"add_prefixes", "remove_prefixes",
		"create_address_scope", "create_address_scope:shared", "get_address_scope", "update_address_scope",
		"update_address_scope:shared", "delete_address_scope",
		"get_segment", "create_segment", "update_segment", "delete_segment", "get_network_ip_availability",
		"create_rbac_policy", "create_rbac_policy:target_tenant", "get_rbac_policy", "update_rbac_policy",
		"update_rbac_policy:target_tenant", "delete_rbac_policy", "get_quota", "update_quota", "delete_quota",
		"create_port", "get_port", "update_port", "delete_port",
		"get_port:binding:vif_type", "get_port:binding:vif_details", "get_port:binding:host_id",
		"get_port:binding:profile", "get_port:resource_request",
	} {
		if _, ok := d[name]; !ok {
			t.Errorf("no default rule %q", name)
		}
	}
	for _, verb := range []string{"create_port:", "update_port:"} {
		for _, a := range []string{"device_owner", "mac_address", "fixed_ips", "fixed_ips:ip_address",
			"fixed_ips:subnet_id", "port_security_enabled", "binding:host_id", "binding:profile",
			"mac_learning_enabled", "allowed_address_pairs", "allowed_address_pairs:mac_address",
			"allowed_address_pairs:ip_address"} {
			if _, ok := d[verb+a]; !ok {
				t.Errorf("no default rule %q", verb+a)
			}
		}
	}
}

func TestAuthorize(t *testing.T) {
	e, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		cred  *auth.Credentials
		attrs []string
		want  string // "" when allowed
	}{
		{"allowed", memberA, nil, ""},
		{"allowed-plain-attrs", memberA, []string{"name", "mtu"}, ""},
		{"action-refused", readerA, nil, "rule:create_network is disallowed by policy"},
		{"attr-refused", memberA, []string{"name", "shared"}, "(rule:create_network and rule:create_network:shared) is disallowed by policy"},
		{"admin-attrs", adminCred, []string{"shared", "provider:network_type"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.Authorize("create_network", netA, tt.cred, tt.attrs...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
				return
			}
			f, ok := fault.As(err)
			if !ok || f.Status != http.StatusForbidden || f.Type != "PolicyNotAuthorized" || f.Message != tt.want {
				t.Fatalf("Authorize = %#v, want 403 PolicyNotAuthorized %q", err, tt.want)
			}
		})
	}
	if !e.Attribute("get_network", "name", netA, readerA) {
		t.Error("an attribute without a rule must be visible")
	}
	if e.Attribute("get_network", "provider:network_type", netA, readerA) {
		t.Error("provider:network_type must be hidden from a reader")
	}
	if e.Check("no_such_rule", netA, adminCred) {
		t.Error("Check of an undefined rule must be false")
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		action string
		cred   *auth.Credentials
		target map[string]any
		want   bool
	}{
		// testdata/policy.yaml lets readers create networks, hides shared
		// networks from other projects and makes get_quota admin-only.
		{"yaml-reader-creates", "policy.yaml", "create_network", readerA, netA, true},
		{"yaml-foo-still-refused", "policy.yaml", "create_network", fooA, netA, false},
		{"yaml-shared-hidden", "policy.yaml", "get_network", memberB, netShared, false},
		{"yaml-external-still-visible", "policy.yaml", "get_network", memberB, netExt, true},
		{"yaml-quota-admin-only", "policy.yaml", "get_quota", readerA, quotaA, false},
		{"yaml-untouched-default", "policy.yaml", "delete_network", memberA, netA, true},
		{"yaml-new-rule", "policy.yaml", "create_network:mtu", memberA, netA, false},
		{"yaml-legacy-list", "policy.yaml", "update_network", readerA, netA, true},
		{"yaml-legacy-list-other", "policy.yaml", "update_network", memberB, netA, false},
		{"yaml-empty-value-always", "policy.yaml", "get_segment", memberB, netA, true},
		{"json-member-shares", "policy.json", "create_network:shared", memberA, netA, true},
		{"json-other-untouched", "policy.json", "create_network:router:external", memberA, netA, false},
	}
	cache := map[string]*Enforcer{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := cache[tt.file]
			if !ok {
				var err error
				if e, err = Load(filepath.Join("testdata", tt.file), nil); err != nil {
					t.Fatal(err)
				}
				cache[tt.file] = e
			}
			if got := e.Enforce(tt.action, tt.target, tt.cred); got != tt.want {
				t.Errorf("%s = %v, want %v", tt.action, got, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body, want string
	}{
		{"bad-rule", `"get_network": "role:admin and"`, `rule "get_network": at offset 14: unexpected end of rule`},
		{"bad-yaml", "a: [", "policy.yaml"},
		{"not-a-string", "a: {b: c}", `rule "a": want a string`},
		{"bad-legacy", "a: [1]", `rule "a": legacy rule`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "policy.yaml")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Error("Load of a missing file must fail")
	}
}
