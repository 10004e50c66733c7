// Command muon is OpenStack Networking, in Go. See internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"muon/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Stdout)
	stop()
	os.Exit(code)
}
