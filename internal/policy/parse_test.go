package policy

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "@"},
		{"blank", "  \t", "@"},
		{"always", "@", "@"},
		{"never", "!", "!"},
		{"role", "role:admin", "role:admin"},
		{"rule", "rule:admin_or_owner", "rule:admin_or_owner"},
		{"generic", "project_id:%(project_id)s", "project_id:%(project_id)s"},
		{"owner-check", "tenant_id:%(network:tenant_id)s", "tenant_id:%(network:tenant_id)s"},
		{"field", "field:networks:router:external=True", "field:networks:router:external=True"},
		{"field-regexp", "field:port:device_owner=~^network:", "field:port:device_owner=~^network:"},
		{"and-or-precedence", "a:1 or b:2 and c:3", "a:1 or b:2 and c:3"},
		{"parens-kept-when-needed", "(a:1 or b:2) and c:3", "(a:1 or b:2) and c:3"},
		{"parens-dropped", "((role:admin))", "role:admin"},
		{"parens-hug-substitution", "(project_id:%(project_id)s)", "project_id:%(project_id)s"},
		{"nested-same-op", "a:1 or (b:2 or c:3)", "a:1 or (b:2 or c:3)"},
		{"keywords-any-case", "NOT role:a AND role:b Or role:c", "not role:a and role:b or role:c"},
		{"not-binds-tight", "not role:a and role:b", "not role:a and role:b"},
		{"not-group", "not (role:a and role:b)", "not (role:a and role:b)"},
		{"double-not", "not not @", "not not @"},
		{"quoted-with-space", "'a b':%(name)s", "'a b':%(name)s"},
		{"literal-left", "True:%(shared)s", "True:%(shared)s"},
		{"substitution-left", "%(project_id)s:%(owner)s", "%(project_id)s:%(owner)s"},
		{"system-scope", "role:admin and system_scope:all", "role:admin and system_scope:all"},
		{"newlines", "role:a\nor\trole:b", "role:a or role:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		pos      int
	}{
		{"no-colon", "admin", 0},
		{"no-colon-later", "role:a or admin", 10},
		{"no-kind", ":x", 0},
		{"empty-rule-name", "rule:", 5},
		{"empty-role", "role:", 5},
		{"dangling-and", "role:a and", 10},
		{"leading-or", "or role:a", 0},
		{"unclosed-paren", "(role:a", 0},
		{"extra-paren", "role:a)", 6},
		{"empty-parens", "()", 1},
		{"two-checks", "role:a role:b", 7},
		{"unterminated-substitution", "project_id:%(project_id", 11},
		{"substitution-without-s", "project_id:%(project_id)x", 24},
		{"empty-substitution", "a:%()s", 2},
		{"unterminated-quote", "'abc:d", 0},
		{"field-malformed", "field:networks", 6},
		{"field-no-value", "field:networks:shared", 15},
		{"field-bad-regexp", "field:port:device_owner=~(", 25},
		{"http-check", "http://example.com", 0},
		{"not-alone", "not", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tt.in, err)
			}
			if se.Pos != tt.pos {
				t.Errorf("Parse(%q): error %q at %d, want at %d", tt.in, se.Msg, se.Pos, tt.pos)
			}
		})
	}
}

func TestParseLegacy(t *testing.T) {
	tests := []struct {
		name string
		in   []any
		want string
	}{
		{"empty-is-always", []any{}, "@"},
		{"one", []any{[]any{"role:admin"}}, "role:admin"},
		{"and-or", []any{[]any{"role:a", "role:b"}, []any{"role:c"}}, "role:a and role:b or role:c"},
		{"empty-inner-never", []any{[]any{}}, "!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseLegacy(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "@", "!", "role:admin", "rule:x or not (a:%(b)s and field:n:s=True)",
		"tenant_id:%(network:tenant_id)s", "'a b':%(c)s", "field:port:device_owner=~^network:",
		"((role:a) or (role:b)) and NOT role:c", "%(a)s:%(b)s-%(c)s", "(a:1", "a:'x",
	} {
		f.Add(s)
	}
	rules := map[string]*Rule{}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		out := r.String()
		r2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its rendering %q does not parse: %v", s, out, err)
		}
		if out2 := r2.String(); out2 != out {
			t.Fatalf("rendering unstable: %q -> %q -> %q", s, out, out2)
		}
		// Evaluation must not panic either.
		r.root.eval(&env{rules: rules, target: map[string]any{"b": "x", "s": true}, cred: adminCred})
	})
}
