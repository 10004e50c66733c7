package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Headers Nova's metadata API trusts from Neutron's metadata proxy.
const (
	hdrForwardedFor = "X-Forwarded-For"
	hdrInstanceID   = "X-Instance-ID"
	hdrTenantID     = "X-Tenant-ID"
	hdrSignature    = "X-Instance-ID-Signature"
)

// Listings of the versions served, as Nova lists them.
const (
	ec2Versions = "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest"
	osVersions  = "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\n2020-10-14\nlatest"
	ec2Keys     = "hostname\ninstance-id\nlocal-hostname\nlocal-ipv4\nmac"
)

// Metadata is the metadata service (169.254.169.254) of the network
// netID. The driver serves it with net/http on a listener at
// 169.254.169.254:80 in the network's namespace; the request's
// RemoteAddr is the instance's address, which names its port among the
// network's ports' fixed IPs (else 404). Only GET and HEAD are allowed.
//
// With Config.MetadataURL, requests are proxied to Nova as Neutron's
// metadata proxy does: X-Forwarded-For (the instance's address),
// X-Instance-ID (the port's device_id), X-Tenant-ID (its project) and
// X-Instance-ID-Signature (hex HMAC-SHA256 of the device id keyed with
// Config.SharedSecret) replace whatever the client sent of them.
// Without it, the handler answers meta_data.json (/openstack/<version>/)
// and the EC2 keys instance-id, hostname, local-hostname, local-ipv4 and
// mac (/<version>/meta-data/) itself; there is no user data.
func (t *Table) Metadata(netID string) http.Handler {
	h := &metadataHandler{t: t, netID: netID}
	if t.metadataURL != nil {
		target := t.metadataURL
		h.proxy = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				id, _ := pr.In.Context().Value(identityKey{}).(*identity)
				pr.SetURL(target)
				hd := pr.Out.Header
				for _, k := range []string{hdrForwardedFor, hdrInstanceID, hdrTenantID, hdrSignature,
					"X-Forwarded-Host", "X-Forwarded-Proto", "X-Neutron-Network-ID", "X-Neutron-Router-ID"} {
					hd.Del(k)
				}
				if id == nil {
					return
				}
				hd.Set(hdrForwardedFor, id.ip)
				hd.Set(hdrInstanceID, id.instance)
				hd.Set(hdrTenantID, id.project)
				hd.Set(hdrSignature, id.signature)
			},
			Transport: t.transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				t.log.WarnContext(r.Context(), "metadata proxy failed", "network", netID, "err", err)
				http.Error(w, "metadata service unavailable", http.StatusBadGateway)
			},
		}
	}
	return h
}

type metadataHandler struct {
	t     *Table
	netID string
	proxy *httputil.ReverseProxy
}

type identityKey struct{}

// identity is who the proxied request is from.
type identity struct {
	ip, instance, project, signature string
}

func (h *metadataHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &h.t.stats.Metadata
	c.Requests.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.Dropped.Add(1)
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ip, ok := remoteIP(r.RemoteAddr)
	var f *facts
	var p *port
	if ok {
		f, p = h.t.lookupIP(h.netID, ip)
	}
	if p == nil || p.api.DeviceID == "" {
		c.Dropped.Add(1)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if h.t.metadataErr != nil {
		c.Dropped.Add(1)
		http.Error(w, "metadata service misconfigured", http.StatusServiceUnavailable)
		return
	}
	c.Replies.Add(1)
	project := p.api.ProjectID
	if project == "" {
		project = f.projectID
	}
	if h.proxy != nil {
		id := &identity{
			ip:        ip.String(),
			instance:  p.api.DeviceID,
			project:   project,
			signature: sign(h.t.cfg.SharedSecret, p.api.DeviceID),
		}
		h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
		return
	}
	h.answer(w, r, f, p, project)
}

// sign is Neutron's X-Instance-ID-Signature.
func sign(secret, instanceID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(instanceID))
	return hex.EncodeToString(m.Sum(nil))
}

// metaData is meta_data.json, what the service knows of it.
type metaData struct {
	UUID             string   `json:"uuid"`
	Hostname         string   `json:"hostname"`
	Name             string   `json:"name"`
	ProjectID        string   `json:"project_id"`
	AvailabilityZone string   `json:"availability_zone"`
	PublicKeys       struct{} `json:"public_keys"`
	Meta             struct{} `json:"meta"`
	LaunchIndex      int      `json:"launch_index"`
}

func (h *metadataHandler) answer(w http.ResponseWriter, r *http.Request, f *facts, p *port, project string) {
	path := strings.Trim(r.URL.Path, "/")
	first, rest, _ := strings.Cut(path, "/")
	text := func(s string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, s)
	}
	fqdn := p.api.Hostname
	if f.domain != "" {
		fqdn += "." + f.domain
	}
	switch {
	case path == "":
		text(ec2Versions)
	case first == "openstack":
		version, file, _ := strings.Cut(rest, "/")
		switch {
		case rest == "":
			text(osVersions)
		case !isVersion(version):
			http.NotFound(w, r)
		case file == "":
			text("meta_data.json")
		case file == "meta_data.json":
			b, err := json.Marshal(metaData{
				UUID: p.api.DeviceID, Hostname: fqdn, Name: p.api.Hostname, ProjectID: project,
			})
			if err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		default:
			http.NotFound(w, r)
		}
	case isVersion(first):
		dir, key, _ := strings.Cut(rest, "/")
		switch {
		case rest == "":
			text("meta-data/")
		case dir != "meta-data":
			http.NotFound(w, r)
		case key == "":
			text(ec2Keys)
		case key == "instance-id":
			text(p.api.DeviceID)
		case key == "hostname", key == "local-hostname":
			text(fqdn)
		case key == "local-ipv4":
			for _, a := range p.addrs {
				if a.addr.Is4() {
					text(a.addr.String())
					return
				}
			}
			http.NotFound(w, r)
		case key == "mac":
			text(strings.ToLower(p.api.MAC))
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

// isVersion tells a metadata version: "latest", "1.0" or a date.
func isVersion(v string) bool {
	if v == "latest" || v == "1.0" {
		return true
	}
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	for i := range len(v) {
		if i != 4 && i != 7 && (v[i] < '0' || v[i] > '9') {
			return false
		}
	}
	return true
}

func remoteIP(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func parseMetadataURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("want an http or https url with a host")
	}
	return u, nil
}

func newTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
	}
}
