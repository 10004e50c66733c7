package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path, from string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	r.RemoteAddr = from
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMetadataSelf(t *testing.T) {
	tb := newTestTable(t, Config{})
	h := tb.Metadata(netA)
	const from = "10.0.0.5:43210"
	for _, c := range []struct {
		name, method, path, from string
		code                     int
		body                     string
	}{
		{"root", "GET", "/", from, 200, ec2Versions},
		{"openstack", "GET", "/openstack", from, 200, osVersions},
		{"openstack-slash", "GET", "/openstack/", from, 200, osVersions},
		{"openstack-latest", "GET", "/openstack/latest", from, 200, "meta_data.json"},
		{"openstack-bad-version", "GET", "/openstack/yesterday/meta_data.json", from, 404, ""},
		{"user_data", "GET", "/openstack/latest/user_data", from, 404, ""},
		{"ec2-latest", "GET", "/latest", from, 200, "meta-data/"},
		{"ec2-keys", "GET", "/latest/meta-data/", from, 200, ec2Keys},
		{"ec2-keys-noslash", "GET", "/latest/meta-data", from, 200, ec2Keys},
		{"instance-id", "GET", "/latest/meta-data/instance-id", from, 200, inst1},
		{"hostname", "GET", "/latest/meta-data/hostname", from, 200, "vm1.openstacklocal"},
		{"local-hostname", "GET", "/2009-04-04/meta-data/local-hostname", from, 200, "vm1.openstacklocal"},
		{"local-ipv4", "GET", "/latest/meta-data/local-ipv4", from, 200, "10.0.0.5"},
		{"mac", "GET", "/1.0/meta-data/mac", from, 200, macVM1},
		{"dated", "GET", "/2009-04-04/meta-data/instance-id", from, 200, inst1},
		{"unknown-key", "GET", "/latest/meta-data/ami-id", from, 404, ""},
		{"user-data", "GET", "/latest/user-data", from, 404, ""},
		{"nonsense", "GET", "/nonsense", from, 404, ""},
		{"head", "HEAD", "/latest/meta-data/instance-id", from, 200, ""},
		{"post", "POST", "/latest/meta-data/instance-id", from, 405, "method not allowed\n"},
		{"unknown-source", "GET", "/latest/meta-data/instance-id", "10.0.0.77:1", 404, "not found\n"},
		{"bad-source", "GET", "/latest/meta-data/instance-id", "nonsense", 404, "not found\n"},
		{"by-ipv6", "GET", "/latest/meta-data/instance-id", "[2001:db8:1::5]:80", 200, inst1},
		{"by-mapped", "GET", "/latest/meta-data/instance-id", "[::ffff:10.0.0.5]:80", 200, inst1},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := get(t, h, c.method, c.path, c.from, nil)
			if w.Code != c.code {
				t.Fatalf("status %d, want %d (%q)", w.Code, c.code, w.Body.String())
			}
			if c.body != "" && w.Body.String() != c.body {
				t.Errorf("body %q, want %q", w.Body.String(), c.body)
			}
		})
	}

	for _, path := range []string{"/openstack/latest/meta_data.json", "/openstack/2018-08-27/meta_data.json"} {
		w := get(t, h, "GET", path, from, nil)
		if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", path, w.Code, w.Header().Get("Content-Type"))
		}
		var md map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"uuid": inst1, "hostname": "vm1.openstacklocal", "name": "vm1", "project_id": "proj-1",
			"availability_zone": "", "public_keys": map[string]any{}, "meta": map[string]any{}, "launch_index": float64(0),
		}
		if got, _ := json.Marshal(md); string(got) != mustJSON(t, want) {
			t.Errorf("%s:\n%s\nwant\n%s", path, got, mustJSON(t, want))
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMetadataProxy(t *testing.T) {
	var mu sync.Mutex
	var seen *http.Request
	nova := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Clone(r.Context())
		mu.Unlock()
		_, _ = io.WriteString(w, "from nova "+r.URL.Path)
	}))
	defer nova.Close()
	const secret = "s3cret"
	tb := newTestTable(t, Config{MetadataURL: nova.URL, SharedSecret: secret})
	h := tb.Metadata(netA)

	spoof := http.Header{
		"X-Instance-Id":           {"someone-else"},
		"X-Tenant-Id":             {"other-project"},
		"X-Forwarded-For":         {"10.0.0.6"},
		"X-Instance-Id-Signature": {"forged"},
		"Accept":                  {"text/plain"},
	}
	w := get(t, h, "GET", "/openstack/latest/meta_data.json?x=1", "10.0.0.5:5555", spoof)
	if w.Code != 200 || w.Body.String() != "from nova /openstack/latest/meta_data.json" {
		t.Fatalf("proxied: %d %q", w.Code, w.Body.String())
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(inst1))
	sig := hex.EncodeToString(mac.Sum(nil))
	mu.Lock()
	defer mu.Unlock()
	for _, c := range []struct{ header, want string }{
		{"X-Forwarded-For", "10.0.0.5"},
		{"X-Instance-ID", inst1},
		{"X-Tenant-ID", "proj-1"},
		{"X-Instance-ID-Signature", sig},
		{"Accept", "text/plain"},
	} {
		if got := seen.Header.Values(c.header); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s = %q, want %q", c.header, got, c.want)
		}
	}
	if seen.URL.RawQuery != "x=1" {
		t.Errorf("query %q", seen.URL.RawQuery)
	}

	if w := get(t, h, "GET", "/latest/meta-data/", "10.0.0.77:5555", nil); w.Code != 404 {
		t.Errorf("unknown source proxied: %d", w.Code)
	}
	if w := get(t, h, "PUT", "/latest/meta-data/", "10.0.0.5:5555", nil); w.Code != 405 {
		t.Errorf("PUT: %d", w.Code)
	}
}

func TestMetadataProxyErrors(t *testing.T) {
	nova := httptest.NewServer(http.NotFoundHandler())
	url := nova.URL
	nova.Close() // nobody there
	tb := newTestTable(t, Config{MetadataURL: url})
	if w := get(t, tb.Metadata(netA), "GET", "/latest/meta-data/", "10.0.0.5:1", nil); w.Code != http.StatusBadGateway {
		t.Errorf("upstream down: %d", w.Code)
	}
	bad := newTestTable(t, Config{MetadataURL: "ftp:/nowhere"})
	if w := get(t, bad.Metadata(netA), "GET", "/latest/meta-data/", "10.0.0.5:1", nil); w.Code != http.StatusServiceUnavailable {
		t.Errorf("bad url: %d", w.Code)
	}
	if !strings.Contains(get(t, bad.Metadata(netA), "GET", "/", "10.0.0.5:1", nil).Body.String(), "misconfigured") {
		t.Error("bad url not told")
	}
}
