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

	"muon/internal/store"
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

// TestWriteFaultUnavailable: a database that is down answers 503 with
// Retry-After, not a 500, and is logged once, not per request.
func TestWriteFaultUnavailable(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 3 {
		rec := httptest.NewRecorder()
		s.writeFault(rec, httptest.NewRequest("GET", "/v2.0/networks", nil), fmt.Errorf("list: %w: %w", store.ErrUnavailable, errors.New("dial tcp: connection refused")))
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"type":"ServiceUnavailable"`) {
			t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	if n := strings.Count(logs.String(), "answering 503"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
}
