package store

// migrations are applied in order; each runs once, in a transaction, and
// is recorded in schema_migrations. Never edit one that has shipped: add
// another. The SQL is common to SQLite and PostgreSQL.
var migrations = []string{
	1: `
CREATE TABLE resources (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	project_id TEXT NOT NULL DEFAULT '',
	parent_id  TEXT NOT NULL DEFAULT '',
	shared     INTEGER NOT NULL DEFAULT 0,
	doc        TEXT NOT NULL
);
CREATE INDEX resources_kind_project ON resources (kind, project_id);
CREATE INDEX resources_parent ON resources (parent_id, kind);

CREATE TABLE ip_allocations (
	subnet_id  TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	ip         TEXT NOT NULL,
	network_id TEXT NOT NULL,
	port_id    TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	PRIMARY KEY (subnet_id, ip)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);

CREATE TABLE mac_addresses (
	network_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	mac        TEXT NOT NULL,
	port_id    TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	PRIMARY KEY (network_id, mac)
);
CREATE INDEX mac_addresses_port ON mac_addresses (port_id);

CREATE TABLE segment_allocations (
	network_type     TEXT NOT NULL,
	physical_network TEXT NOT NULL DEFAULT '',
	segmentation_id  BIGINT NOT NULL,
	segment_id       TEXT NOT NULL UNIQUE REFERENCES resources (id) ON DELETE CASCADE,
	network_id       TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	PRIMARY KEY (network_type, physical_network, segmentation_id)
);
`,
	2: `
CREATE TABLE resource_names (
	kind  TEXT NOT NULL,
	scope TEXT NOT NULL DEFAULT '',
	name  TEXT NOT NULL,
	id    TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	PRIMARY KEY (kind, scope, name)
);
CREATE INDEX resource_names_id ON resource_names (id);

CREATE TABLE role_assignments (
	actor_id  TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	target_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	role_id   TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	PRIMARY KEY (actor_id, target_id, role_id)
);
CREATE INDEX role_assignments_target ON role_assignments (target_id);
CREATE INDEX role_assignments_role ON role_assignments (role_id);
`,
	3: `
CREATE TABLE rbac_grants (
	policy_id      TEXT PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
	object_type    TEXT NOT NULL,
	object_id      TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	target_project TEXT NOT NULL,
	action         TEXT NOT NULL,
	UNIQUE (object_type, object_id, target_project, action)
);
CREATE INDEX rbac_grants_target ON rbac_grants (target_project, object_id);
CREATE INDEX rbac_grants_object ON rbac_grants (object_id);
`,
	4: `
CREATE TABLE change_seq (
	id  INTEGER PRIMARY KEY,
	seq BIGINT NOT NULL
);
INSERT INTO change_seq (id, seq) VALUES (1, 0);
CREATE TABLE changes (
	seq        BIGINT PRIMARY KEY,
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	project_id TEXT NOT NULL DEFAULT '',
	op         TEXT NOT NULL,
	at         TEXT NOT NULL
);
`,
	5: `
CREATE TABLE resource_refs (
	kind    TEXT NOT NULL,
	from_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
	to_id   TEXT NOT NULL REFERENCES resources (id),
	PRIMARY KEY (kind, from_id, to_id)
);
CREATE INDEX resource_refs_to ON resource_refs (to_id, kind);
`,
	// 6 was reserved for the L3 plugin, which keeps its invariants in
	// resource_names instead; it stays empty.
	6: ``,
	7: `
ALTER TABLE changes ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';
CREATE TABLE port_bindings (
	port_id    TEXT PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
	host       TEXT NOT NULL,
	network_id TEXT NOT NULL,
	vif_type   TEXT NOT NULL,
	prev_host  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX port_bindings_host ON port_bindings (host, vif_type);
CREATE INDEX port_bindings_network ON port_bindings (network_id);
CREATE TABLE agent_heartbeats (
	agent_id TEXT PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
	at_ms    BIGINT NOT NULL
);
`,
	// Lists read a page at a time in id order within a kind.
	8: `CREATE INDEX resources_kind_id ON resources (kind, id);`,
}
