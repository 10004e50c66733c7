#!/usr/bin/env bash
# Runs OpenStack's conformance suite (tempest.api.network, Debian's tempest
# package) against a fresh `muon up` and prints, last,
#   tempest: P passed, F failed, S skipped
# It fails when fewer tests pass than scripts/tempest/baseline records.
#
#   scripts/tempest.sh [REGEX]     default ^tempest\.api\.network
#
# Env: MUON_TEMPEST_CONCURRENCY (2), MUON_TEMPEST_KEEP=1 keeps the work dir.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
regex=${1:-^tempest\.api\.network}
concurrency=${MUON_TEMPEST_CONCURRENCY:-2}
baseline=$(cat scripts/tempest/baseline 2>/dev/null || echo 0)

if [ ! -x /usr/bin/tempest ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "tempest.sh: tempest is not installed and installing it needs root" >&2
		[ "${MUON_E2E:-}" = 1 ] && exit 1
		echo "tempest: 0 passed, 0 failed, 0 skipped (not run)"
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends tempest >/dev/null ||
		{ echo "tempest.sh: could not install tempest" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/muon-tempest.XXXXXX)
pid=
wsname=
ns=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$wsname" ] && /usr/bin/tempest workspace remove --name "$wsname" >/dev/null 2>&1
	if [ -n "$ns" ]; then
		# The agent's namespaces (their names; each went with the agent's
		# mount namespace) and the suite's own.
		for f in /run/netns/"$ns"-*; do [ -e "$f" ] && { ip netns del "$(basename "$f")" 2>/dev/null || rm -f "$f"; }; done
		ip netns del "$ns" 2>/dev/null
	fi
	[ "${MUON_TEMPEST_KEEP:-}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

# As root, the server, its agent (L2 and DHCP: the DHCP agent scheduler
# tests need a live DHCP agent) and tempest all run in a network
# namespace of this script's, on its loopback: the agent's bridges and
# namespaces never touch the host's. Without root, the agent is off.
in_ns=()
agent=(--agent=false)
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
	ns="mutempest$$"
	ip netns add "$ns" && ip -n "$ns" link set lo up || exit 1
	in_ns=(ip netns exec "$ns")
	agent=(--agent=true --tunnel-ip 127.0.0.1 --netns-prefix "$ns-")
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
idport=$(free_port)
password=tempest-admin
go build -o "$work/muon" ./cmd/muon || exit 1
"${in_ns[@]}" "$work/muon" up "${agent[@]}" --data-dir "$work/data" --port "$port" --identity-port "$idport" \
	--admin-password "$password" >"$work/muon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "muon is up" "$work/muon.log" && break; sleep 0.1; done
grep -q "muon is up" "$work/muon.log" || { cat "$work/muon.log" >&2; exit 1; }

# What the server reports: its extensions, and an external network
# "public" for the floating IP and router tests.
eval "$(IDENTITY=http://127.0.0.1:$idport/v3 PASSWORD=$password "${in_ns[@]}" /usr/bin/python3 "$top/scripts/tempest/setup.py")" ||
	{ echo "tempest.sh: discovery failed" >&2; exit 1; }
has() { [[ ",$EXTENSIONS," == *",$1,"* ]]; }
tf() { has "$1" && echo true || echo false; }

wsname="muon-$(basename "$work")"
(cd "$work" && /usr/bin/tempest init --name "$wsname" ws >/dev/null) || exit 1
cat >"$work/ws/etc/tempest.conf" <<CONF
[DEFAULT]
log_dir = $work/ws/logs
log_file = tempest.log

[auth]
use_dynamic_credentials = true
create_isolated_networks = true
admin_username = admin
admin_password = $password
admin_project_name = admin
admin_domain_name = Default
default_credentials_domain_name = Default

[identity]
uri_v3 = http://127.0.0.1:$idport/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false
api_v3 = true

[service_available]
neutron = true
nova = false
glance = false
cinder = false
swift = false
heat = false
horizon = false
placement = false

[network]
catalog_type = network
region = RegionOne
endpoint_type = publicURL
public_network_id = $PUBLIC_NETWORK_ID
floating_network_name = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8:8000::/48
project_network_v6_mask_bits = 64
shared_physical_network = false

[network-feature-enabled]
api_extensions = $EXTENSIONS
ipv6 = true
ipv6_subnet_attributes = true
port_security = $(tf port-security)
floating_ips = $(tf router)
port_admin_state_change = true
available_features = ipv6_metadata

[neutron_plugin_options]
provider_vlans = foo,
provider_net_base_segm_id = 1
available_type_drivers = flat,vlan,vxlan
agent_availability_zone = nova
q_agent = None

[validation]
run_validation = false

[enforce_scope]
neutron = false
keystone = false
CONF

log="$work/tempest.log"
start=$(date +%s.%N)
(cd "$work/ws" && PYTHONPATH="$top/scripts/tempest" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	"${in_ns[@]}" /usr/bin/tempest run --regex "$regex" --concurrency "$concurrency" >"$log" 2>&1)
end=$(date +%s.%N)
count() { grep -E "^ - $1: " "$log" | tail -1 | awk '{print $NF}'; }
passed=$(count Passed)
failed=$(count Failed)
skipped=$(count Skipped)
grep -E '^\{[0-9]+\} .* \.\.\. FAILED$' "$log" | sed -E 's/^\{[0-9]+\} ([^ ]+).*/FAILED \1/' | sort -u
mkdir -p "$top/.tempest"
cp "$log" "$top/.tempest/last.log"
printf 'wall: %.1f s at concurrency %s (log: .tempest/last.log)\n' "$(echo "$end - $start" | bc)" "$concurrency"
echo "tempest: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [ "$regex" = '^tempest\.api\.network' ] && [ "${passed:-0}" -lt "$baseline" ]; then
	echo "tempest.sh: ${passed:-0} passed is below the recorded ${baseline}" >&2
	exit 1
fi
exit 0
