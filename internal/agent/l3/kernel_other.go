//go:build !linux

package l3

import (
	"context"
	"errors"
	"net"

	"github.com/mdlayher/ndp"
)

// NewKernel is a Kernel that cannot: routers need Linux.
func NewKernel(prefix string, mark func() string) Kernel { return none{} }

type none struct{}

var errLinux = errors.New("l3: routers need Linux")

func (none) Routers(context.Context) ([]string, error) { return nil, nil }
func (none) Present(context.Context) ([]string, error) { return nil, nil }
func (none) Ensure(context.Context, Spec) error        { return errLinux }
func (none) Remove(context.Context, string) error      { return nil }
func (none) ListenRA(context.Context, string, string) (*ndp.Conn, net.HardwareAddr, error) {
	return nil, nil, errLinux
}
