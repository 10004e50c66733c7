package ipam

import (
	"strings"
	"testing"
)

func TestCheckDNSDomain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" valid
	}{
		{"", ""}, {"example.org.", ""}, {"my-domain.example", ""}, {"openstacklocal.", ""}, {"a", ""},
		{"a..b", "empty component"}, {"-a.org", "hyphen"}, {"a-.org", "hyphen"}, {"a_b.org", "alphanumeric"},
		{"example.123", "all numeric"}, {strings.Repeat("a", 64) + ".org", "1-63"}, {"white space.org", "alphanumeric"},
		{strings.Repeat("abcdefgh.", 30) + "org", "character FQDN limit"}, {".", "empty component"},
	} {
		err := CheckDNSDomain(tc.in, 255)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzCheckDNSDomain(f *testing.F) {
	f.Add("example.org.")
	f.Add("a..b")
	f.Fuzz(func(t *testing.T, s string) {
		if CheckDNSDomain(s, 255) == nil && s != "" {
			for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
				if l == "" || strings.HasPrefix(l, "-") || len(l) > 63 {
					t.Fatalf("%q accepted", s)
				}
			}
		}
	})
}
