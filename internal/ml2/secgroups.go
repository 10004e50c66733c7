package ml2

import "muon/internal/resource"

// normalizeSecurityGroups leaves a port's security_groups a list without
// repeats. The security group feature (internal/secgroup) settles which
// groups a port gets, on the port events; without it they are only
// stored.
func normalizeSecurityGroups(d resource.Doc) {
	d["security_groups"] = resource.List(resource.Uniq(resource.Strings(d["security_groups"])))
}
