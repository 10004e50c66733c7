//go:build !linux

package kernel

import "errors"

// Host is the Kernel of this host: only Linux has one.
func Host() (Kernel, func(), error) {
	return nil, nil, errors.New("kernel: the data plane needs Linux")
}
