// Package types compiles in every ML2 type driver.
package types

import (
	_ "muon/internal/ml2/types/flat"
	_ "muon/internal/ml2/types/geneve"
	_ "muon/internal/ml2/types/local"
	_ "muon/internal/ml2/types/vlan"
	_ "muon/internal/ml2/types/vxlan"
)
