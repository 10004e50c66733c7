package ipam

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	dnsLabel   = regexp.MustCompile(`^[A-Za-z0-9-]{1,63}$`)
	allNumeric = regexp.MustCompile(`^[0-9]+$`)
)

// CheckDNSDomain tells why s is not a partially or fully qualified domain
// name, as Neutron checks dns_domain (a trailing dot marks an FQDN; labels
// of letters, digits and hyphens, 1-63 long, not starting or ending with
// a hyphen; at most maxLen characters; a TLD not all digits). "" is fine.
func CheckDNSDomain(s string, maxLen int) error {
	if s == "" {
		return nil
	}
	reason := func() string {
		trimmed := strings.TrimSuffix(s, ".")
		if len(trimmed) > maxLen {
			return fmt.Sprintf("'%s' exceeds the %d character FQDN limit", trimmed, maxLen)
		}
		labels := strings.Split(trimmed, ".")
		for _, l := range labels {
			switch {
			case l == "":
				return "Encountered an empty component"
			case strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-"):
				return fmt.Sprintf("Name '%s' must not start or end with a hyphen", l)
			case !dnsLabel.MatchString(l):
				return fmt.Sprintf("Name '%s' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen", l)
			}
		}
		if len(labels) > 1 && allNumeric.MatchString(labels[len(labels)-1]) {
			return fmt.Sprintf("TLD '%s' must not be all numeric", labels[len(labels)-1])
		}
		return ""
	}()
	if reason == "" {
		return nil
	}
	return fmt.Errorf("'%s' not a valid PQDN or FQDN. Reason: %s", s, reason)
}
