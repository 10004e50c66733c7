package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteFaultCancelled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gone    bool // the client's context is cancelled
		err     error
		wantLog string
	}{
		{"client-gone", true, fmt.Errorf("long poll: %w", context.Canceled), ""},
		{"cancelled-inside", false, context.Canceled, "ERROR"},
		{"plain-failure", true, errors.New("boom"), "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
			r := httptest.NewRequest("GET", "/muon/v1/hosts/h/state", nil)
			if tc.gone {
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				r = r.WithContext(ctx)
			}
			s.writeFault(httptest.NewRecorder(), r, tc.err)
			if got := logs.String(); tc.wantLog == "" && got != "" || !strings.Contains(got, tc.wantLog) {
				t.Errorf("logged %q, want %q", got, tc.wantLog)
			}
		})
	}
}
