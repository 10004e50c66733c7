package feature

import (
	"context"
	"strings"
	"testing"

	"muon/internal/quota"
)

func build(context.Context, Env) (Parts, error) { return Parts{}, nil }

func TestRegisterRefuses(t *testing.T) {
	mu.Lock()
	saved := registry
	registry = map[string]Feature{}
	mu.Unlock()
	t.Cleanup(func() { mu.Lock(); registry = saved; mu.Unlock() })

	Register(Feature{Name: "a", Build: build, Extensions: []Extension{Ext("x", "X", "", "")},
		Quotas: []quota.Resource{{Name: "q", Kind: "q", Default: 1}}, Policy: map[string]string{"get_a": ""}})
	for _, tc := range []struct {
		name string
		f    Feature
		want string
	}{
		{"empty-name", Feature{Build: build}, "empty name"},
		{"duplicate-name", Feature{Name: "a", Build: build}, "registered twice"},
		{"no-build", Feature{Name: "b"}, "no Build"},
		{"duplicate-alias", Feature{Name: "b", Build: build, Extensions: []Extension{Ext("x", "", "", "")}}, `extension "x"`},
		{"empty-alias", Feature{Name: "b", Build: build, Extensions: []Extension{Ext("", "", "", "")}}, "no alias"},
		{"duplicate-quota", Feature{Name: "b", Build: build, Quotas: []quota.Resource{{Name: "q", Kind: "q"}}}, `quota "q"`},
		{"duplicate-rule", Feature{Name: "b", Build: build, Policy: map[string]string{"get_a": ""}}, `rule "get_a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.want) {
					t.Errorf("panic %v, want one about %q", r, tc.want)
				}
			}()
			Register(tc.f)
		})
	}
	if got := All(); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("All() = %v, want only a: a refused registration must leave nothing", got)
	}
}
