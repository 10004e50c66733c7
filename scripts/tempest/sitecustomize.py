# Loaded through PYTHONPATH into the tempest processes scripts/tempest.sh
# starts. Debian's tempest (1:33.0.0-1) makes SubnetsClient.delete_subnet
# sleep ten seconds before each DELETE, which upstream tempest does not;
# with MUON_TEMPEST_NO_SUBNET_SLEEP=1 (the default) the upstream method is
# put back, so the run measures the server, not the sleeps.
import os

if os.environ.get("MUON_TEMPEST_NO_SUBNET_SLEEP", "1") == "1":
    try:
        from tempest.lib.services.network import subnets_client

        def _delete_subnet(self, subnet_id):
            return self.delete_resource("/subnets/%s" % subnet_id)

        subnets_client.SubnetsClient.delete_subnet = _delete_subnet
    except ImportError:
        pass
