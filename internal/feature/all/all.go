// Package all compiles in every feature: a server that imports it serves
// them all, as configuration allows.
package all

import (
	_ "muon/internal/agents"
	_ "muon/internal/dhcp"
	_ "muon/internal/l3"
	_ "muon/internal/metering"
	_ "muon/internal/secgroup"
)
