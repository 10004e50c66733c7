// Package all compiles in every agent driver: an agent built with it
// builds every section of its host's state it is given.
package all

import (
	_ "muon/internal/agent/dhcp"
	_ "muon/internal/agent/l2"
	_ "muon/internal/agent/l3"
)
