package ml2

import (
	"encoding/json"
	"reflect"
	"testing"

	"muon/internal/resource"
	"muon/internal/store"
)

// TestPortReadModelsAgree: a port read from its record (decoded straight
// into fields) and from an event's document are the same PortInfo.
func TestPortReadModelsAgree(t *testing.T) {
	for _, raw := range []string{
		`{"id":"p1","project_id":"pr","network_id":"n1","mac_address":"fa:16:3e:00:00:01","admin_state_up":false,"status":"ACTIVE",
		  "device_owner":"compute:nova","device_id":"vm","binding:host_id":"h1","binding:vnic_type":"normal","binding:vif_type":"bridge",
		  "fixed_ips":[{"subnet_id":"s1","ip_address":"10.0.0.5"},{"subnet_id":"s2","ip_address":"2001:db8::5"}],
		  "dns_assignment":[{"hostname":"vm1","ip_address":"10.0.0.5","fqdn":"vm1.openstacklocal."}],
		  "extra_dhcp_opts":[{"opt_name":"tftp-server","opt_value":"10.0.0.9","ip_version":4},{"opt_name":"59","opt_value":"x","ip_version":6},{"opt_name":"42","opt_value":"y"}],
		  "provisioning_blocks":["DHCP"]}`,
		`{"id":"p2","network_id":"n1","mac_address":"fa:16:3e:00:00:02","fixed_ips":[]}`,
	} {
		var d resource.Doc
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatal(err)
		}
		got, err := decodePort(&store.Record{Kind: "port", ID: resource.Str(d["id"]), Doc: []byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		if want := portInfo(d); !reflect.DeepEqual(got, want) {
			t.Errorf("from the record %+v\nfrom the document %+v", got, want)
		}
	}
}
