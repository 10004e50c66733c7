//go:build !linux

package kernel

import "errors"

// Host is the Kernel of this host: only Linux has one.
func Host(owner string) (Kernel, func(), error) {
	return nil, nil, errors.New("kernel: the data plane needs Linux")
}

// PlugInstance needs Linux.
func PlugInstance(Instance) error { return errors.New("kernel: plugging instances needs Linux") }

// UnplugInstance needs Linux.
func UnplugInstance(string, string) error {
	return errors.New("kernel: plugging instances needs Linux")
}
