#!/usr/bin/python3
"""Reads what tempest.conf needs from a running Muon, as an admin, and
prints shell assignments: EXTENSIONS (the aliases GET /v2.0/extensions
lists) and PUBLIC_NETWORK_ID (an external network "public" with an IPv4
and an IPv6 subnet, made here). Standard library only: it runs with
Debian's /usr/bin/python3."""
import json
import os
import urllib.request

IDENTITY = os.environ["IDENTITY"].rstrip("/")
PASSWORD = os.environ["PASSWORD"]


def call(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return resp.headers, json.loads(raw) if raw else None


def main():
    scope = {"project": {"name": "admin", "domain": {"name": "Default"}}}
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}}, "scope": scope}}
    headers, body = call("POST", IDENTITY + "/auth/tokens", auth)
    token = headers["X-Subject-Token"]
    network = [e["url"] for s in body["token"]["catalog"] if s["type"] == "network"
               for e in s["endpoints"] if e["interface"] == "public"][0].rstrip("/")
    _, ext = call("GET", network + "/v2.0/extensions", token=token)
    aliases = sorted(e["alias"] for e in ext["extensions"])
    _, net = call("POST", network + "/v2.0/networks", {"network": {
        "name": "public", "router:external": True,
        "provider:network_type": "flat", "provider:physical_network": "public"}}, token)
    net_id = net["network"]["id"]
    for cidr, gateway, version in (("172.24.4.0/24", "172.24.4.1", 4), ("2001:db8::/64", "2001:db8::2", 6)):
        call("POST", network + "/v2.0/subnets", {"subnet": {
            "network_id": net_id, "name": "public-v%d" % version, "ip_version": version,
            "cidr": cidr, "gateway_ip": gateway, "enable_dhcp": False}}, token)
    print("EXTENSIONS='%s'" % ",".join(aliases))
    print("PUBLIC_NETWORK_ID='%s'" % net_id)


main()
