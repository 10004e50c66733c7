package postgres

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin-shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection-failure", &pgconn.PgError{Code: "08006"}, true},
		{"disk-full", &pgconn.PgError{Code: "53100"}, true},
		{"read-only", fmt.Errorf("insert: %w", &pgconn.PgError{Code: "25006"}), true},
		{"refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"unique", &pgconn.PgError{Code: "23505"}, false},
		{"syntax", &pgconn.PgError{Code: "42601"}, false},
		{"plain", errors.New("boom"), false},
	} {
		if got := isUnavailable(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
