// Package e2e holds end-to-end tests that run muon's processes for real:
// the data plane test builds hosts as network namespaces joined by an
// underlay, runs the server and one agent per host, and pings between
// instances.
package e2e
