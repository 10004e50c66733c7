package ml2

import (
	"slices"

	"muon/internal/resource"
)

// normalizeSecurityGroups leaves a port's security_groups a list without
// repeats. The security group feature (internal/secgroup) settles which
// groups a port gets, on the port events; without it they are only
// stored.
func normalizeSecurityGroups(d resource.Doc) {
	d["security_groups"] = resource.List(uniq(resource.Strings(d["security_groups"])))
}

func uniq(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
