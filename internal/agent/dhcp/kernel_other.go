//go:build !linux

package dhcp

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("dhcp: network namespaces need Linux")

type otherKernel struct{}

// NewKernel is a Kernel that can do nothing off Linux.
func NewKernel(prefix string, mark func() string) Kernel { return otherKernel{} }

func (otherKernel) Served(ctx context.Context) ([]string, error)  { return nil, nil }
func (otherKernel) Present(ctx context.Context) ([]string, error) { return nil, nil }
func (otherKernel) EnsurePort(ctx context.Context, p Port) error  { return errUnsupported }
func (otherKernel) Remove(ctx context.Context, networkID string) error {
	return nil
}
func (otherKernel) Listen(ctx context.Context, networkID string, v6 bool) (*Sockets, error) {
	return nil, errUnsupported
}
