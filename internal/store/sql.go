package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Dialect is what differs between the SQL databases Muon runs on.
type Dialect struct {
	Name string
	// Numbered placeholders ($1) instead of ?.
	Numbered bool
	// ForUpdate is appended to a SELECT that locks (empty where the
	// database serialises writers anyway).
	ForUpdate string
	// ForShare is appended to a SELECT that holds a row against
	// ForUpdate but not against other ForShare readers.
	ForShare string
	// IsUnique tells a uniqueness violation.
	IsUnique func(error) bool
	// IsRetry tells a serialisation failure worth running again.
	IsRetry func(error) bool
	// IsUnavailable tells a failure of the database itself (down, disk
	// full, read-only), which the store reports as ErrUnavailable.
	IsUnavailable func(error) bool
	// SerialWrites makes Update hold a process-wide lock (SQLite has one
	// writer).
	SerialWrites bool
	// Notify, when set, runs in every transaction that writes changes,
	// with the feed's new last number as its argument, so that other
	// servers on the database wake their watchers (PostgreSQL's
	// pg_notify).
	Notify string
	// SnapshotReads makes Snapshot ask for a repeatable-read transaction
	// (PostgreSQL reads each statement at its own snapshot otherwise).
	SnapshotReads bool
}

// SQL is a Store over database/sql.
type SQL struct {
	d      Dialect
	writer *sql.DB
	reader *sql.DB
	wmu    sync.Mutex
	// cache of rebound statements
	qcache sync.Map
	// prepared statements, per database
	stmts sync.Map // stmtKey -> *sql.Stmt

	// the change feed's watchers: feedWake is closed at each commit
	feedMu   sync.Mutex
	feedLast int64
	feedWake chan struct{}

	closers []func()
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// prepare readies the statements every request uses on both databases,
// before any transaction holds SQLite's single writer connection: parsing
// SQL is a tenth of a port create's cost. Statements with IN lists of
// varying length are not among them and are parsed each time.
func (s *SQL) prepare(ctx context.Context) error {
	queries := hotQueries
	for _, f := range hotListShapes {
		q, _ := listQuery(f)
		queries = append(queries[:len(queries):len(queries)], q)
	}
	for _, db := range []*sql.DB{s.writer, s.reader} {
		for _, q := range queries {
			q = s.q(q)
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", q, err)
			}
			s.stmts.Store(stmtKey{db, q}, st)
		}
		if s.reader == s.writer {
			break
		}
	}
	return nil
}

// prepared returns q's prepared statement on db, or nil.
func (s *SQL) prepared(db *sql.DB, q string) *sql.Stmt {
	if v, ok := s.stmts.Load(stmtKey{db, q}); ok {
		return v.(*sql.Stmt)
	}
	return nil
}

// NewSQL wraps opened databases (reader may be writer) and migrates them.
func NewSQL(ctx context.Context, d Dialect, writer, reader *sql.DB) (*SQL, error) {
	s := &SQL{d: d, writer: writer, reader: reader, feedWake: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *SQL) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	if v, ok := s.qcache.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	out := b.String()
	s.qcache.Store(query, out)
	return out
}

func (s *SQL) migrate(ctx context.Context) error {
	if _, err := s.writer.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var have int
	if err := s.writer.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for v := have + 1; v < len(migrations); v++ {
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for stmt := range strings.SplitSeq(migrations[v], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version) VALUES (?)`), v); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// OnClose runs f when the store closes, before its databases do.
func (s *SQL) OnClose(f func()) { s.closers = append(s.closers, f) }

// Close closes the databases.
func (s *SQL) Close() error {
	for _, f := range s.closers {
		f()
	}
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	err := s.writer.Close()
	if s.reader != s.writer {
		err = errors.Join(err, s.reader.Close())
	}
	return err
}

// Update runs fn in a read-write transaction.
func (s *SQL) Update(ctx context.Context, fn func(Tx) error) error {
	if s.d.SerialWrites {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	for attempt := 0; ; attempt++ {
		err := s.run(ctx, s.writer, nil, fn)
		if err != nil && s.d.IsRetry != nil && s.d.IsRetry(err) && attempt < 20 {
			continue
		}
		return err
	}
}

// View runs fn in a read-only transaction.
func (s *SQL) View(ctx context.Context, fn func(Tx) error) error {
	return s.run(ctx, s.reader, &sql.TxOptions{ReadOnly: true}, fn)
}

// Snapshot runs fn in a read-only transaction whose reads all see one
// snapshot of the database (SQLite's read transactions always do).
func (s *SQL) Snapshot(ctx context.Context, fn func(Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.SnapshotReads {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return s.run(ctx, s.reader, opts, fn)
}

func (s *SQL) run(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(Tx) error) error {
	err := s.runOnce(ctx, db, opts, fn)
	if err != nil && s.d.IsUnavailable != nil && !errors.Is(err, ErrUnavailable) && s.d.IsUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (s *SQL) runOnce(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &sqlTx{s: s, db: db, tx: tx}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	last, err := t.writeChanges(ctx)
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if last > 0 {
		s.committed(last)
	}
	return nil
}

type sqlTx struct {
	s       *SQL
	db      *sql.DB
	tx      *sql.Tx
	changes []Change
}

// stmt is q prepared for this transaction, or nil if q is not a hot query.
func (t *sqlTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	st := t.s.prepared(t.db, t.s.q(q))
	if st == nil {
		return nil, nil
	}
	return t.tx.StmtContext(ctx, st), nil
}

func (t *sqlTx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return t.tx.ExecContext(ctx, t.s.q(q), args...)
	}
	return st.ExecContext(ctx, args...)
}

func (t *sqlTx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return t.tx.QueryContext(ctx, t.s.q(q), args...)
	}
	return st.QueryContext(ctx, args...)
}

func (t *sqlTx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, q)
	if err != nil || st == nil {
		return t.tx.QueryRowContext(ctx, t.s.q(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

const recordCols = `kind, id, project_id, parent_id, shared, doc`

const (
	qGet        = `SELECT ` + recordCols + ` FROM resources WHERE id = ? AND kind = ?`
	qInsert     = `INSERT INTO resources (` + recordCols + `) VALUES (?, ?, ?, ?, ?, ?)`
	qUpdate     = `UPDATE resources SET project_id = ?, parent_id = ?, shared = ?, doc = ? WHERE id = ? AND kind = ?`
	qDelete     = `DELETE FROM resources WHERE id = ? AND kind = ? RETURNING parent_id`
	qClaimIP    = `INSERT INTO ip_allocations (subnet_id, ip, network_id, port_id) VALUES (?, ?, ?, ?)` + onConflict
	qReleaseIP  = `DELETE FROM ip_allocations WHERE subnet_id = ? AND ip = ?`
	qPortIPs    = `SELECT subnet_id, ip, network_id, port_id FROM ip_allocations WHERE port_id = ?`
	qClaimMAC   = `INSERT INTO mac_addresses (network_id, mac, port_id) VALUES (?, ?, ?)` + onConflict
	qReleaseMAC = `DELETE FROM mac_addresses WHERE network_id = ? AND mac = ?`
	onConflict  = ` ON CONFLICT DO NOTHING`
)

// hotQueries are prepared once per database.
var hotQueries = []string{qGet, qInsert, qUpdate, qDelete, qClaimIP, qReleaseIP, qPortIPs, qClaimMAC, qReleaseMAC,
	qNextSeq, qChange, qSetBinding, qAddRef, qDropRefs, qClaimName}

// Statements of the other tables that every port create runs.
const (
	qAddRef     = `INSERT INTO resource_refs (kind, from_id, to_id) VALUES (?, ?, ?)` + onConflict
	qDropRefs   = `DELETE FROM resource_refs WHERE kind = ? AND from_id = ?`
	qClaimName  = `INSERT INTO resource_names (kind, scope, name, id) VALUES (?, ?, ?, ?)` + onConflict
	qSetBinding = `INSERT INTO port_bindings (port_id, host, network_id, vif_type, prev_host) VALUES (?, ?, ?, ?, '')
ON CONFLICT (port_id) DO UPDATE SET
	prev_host = CASE WHEN port_bindings.host = excluded.host THEN port_bindings.prev_host ELSE port_bindings.host END,
	host = excluded.host, network_id = excluded.network_id, vif_type = excluded.vif_type`
)

func scanRecord(sc interface{ Scan(...any) error }) (*Record, error) {
	var r Record
	var shared int
	var doc string
	if err := sc.Scan(&r.Kind, &r.ID, &r.ProjectID, &r.ParentID, &shared, &doc); err != nil {
		return nil, err
	}
	r.Shared = shared != 0
	r.Doc = []byte(doc)
	return &r, nil
}

func (t *sqlTx) Get(ctx context.Context, kind, id string) (*Record, error) {
	return t.get(ctx, kind, id, "")
}

func (t *sqlTx) Lock(ctx context.Context, kind, id string) (*Record, error) {
	return t.get(ctx, kind, id, t.s.d.ForUpdate)
}

func (t *sqlTx) LockShared(ctx context.Context, kind, id string) (*Record, error) {
	return t.get(ctx, kind, id, t.s.d.ForShare)
}

// storable tells whether a key can be in the database at all: PostgreSQL
// refuses NUL bytes and invalid UTF-8 in text, so such an id is simply
// not found (as on SQLite), not an error.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func (t *sqlTx) get(ctx context.Context, kind, id, suffix string) (*Record, error) {
	if !storable(id) || !storable(kind) {
		return nil, ErrNotFound
	}
	row := t.queryRow(ctx, qGet+suffix, id, kind)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

func where(f Filter) (string, []any) {
	var b strings.Builder
	args := []any{f.Kind}
	b.WriteString(` WHERE kind = ?`)
	in := func(col string, vals []string) {
		b.WriteString(" AND " + col + " IN (" + strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",") + ")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if len(f.IDs) > 0 {
		in("id", f.IDs)
	}
	if len(f.Parents) > 0 {
		in("parent_id", f.Parents)
	}
	if len(f.Projects) > 0 {
		b.WriteString(" AND (project_id IN (" + strings.TrimSuffix(strings.Repeat("?,", len(f.Projects)), ",") + ")")
		for _, v := range f.Projects {
			args = append(args, v)
		}
		if f.OrShared {
			b.WriteString(" OR shared = 1")
		}
		if f.GrantedTo != "" {
			// A grant shows its object; its object's children (a network's
			// subnets) only when it shares it, not when it makes it external.
			if f.GrantedParent {
				b.WriteString(" OR parent_id IN (SELECT object_id FROM rbac_grants WHERE target_project = ? AND action = 'access_as_shared')")
			} else {
				b.WriteString(" OR id IN (SELECT object_id FROM rbac_grants WHERE target_project = ?)")
			}
			args = append(args, f.GrantedTo)
		}
		if f.ParentOwner != "" {
			b.WriteString(" OR parent_id IN (SELECT id FROM resources WHERE kind = ? AND project_id = ?)")
			args = append(args, f.ParentKind, f.ParentOwner)
		}
		b.WriteString(")")
	}
	if f.After != "" {
		b.WriteString(" AND id > ?")
		args = append(args, f.After)
	}
	return b.String(), args
}

// storableFilter drops the values no record can have (see storable); a
// filter left naming nothing where it named something matches nothing.
func storableFilter(f Filter) (Filter, bool) {
	keep := func(vals []string) ([]string, bool) {
		if !slices.ContainsFunc(vals, func(v string) bool { return !storable(v) }) {
			return vals, true // the usual case: nothing to copy
		}
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			if storable(v) {
				out = append(out, v)
			}
		}
		return out, len(out) > 0
	}
	var ok1, ok2, ok3 bool
	f.IDs, ok1 = keep(f.IDs)
	f.Parents, ok2 = keep(f.Parents)
	f.Projects, ok3 = keep(f.Projects)
	return f, ok1 && ok2 && ok3 && storable(f.GrantedTo) && storable(f.ParentOwner) && storable(f.After)
}

// listQuery is List's statement for a filter; filters of one shape give
// the same text, so the common shapes can be prepared.
func listQuery(f Filter) (string, []any) {
	w, args := where(f)
	q := `SELECT ` + recordCols + ` FROM resources` + w
	if !byParent(f) {
		q += ` ORDER BY id`
	}
	if f.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	return q, args
}

// byParent is a whole list of some parents' children: sorted by List, not
// by the database, so that its planner, which knows no table sizes, takes
// the (parent_id, kind) index instead of walking (kind, id) in id order
// over every record of the kind (a network's 10 ports read past all
// 10,000 of the cloud).
func byParent(f Filter) bool { return len(f.Parents) > 0 && len(f.IDs) == 0 && f.Limit == 0 }

// hotListShapes are the filter shapes requests use all the time (a
// network's subnets, ports or segments; one record by id; a project's
// own and shared records), prepared like hotQueries.
var hotListShapes = []Filter{
	{Kind: "k", Parents: []string{"p"}},
	{Kind: "k", IDs: []string{"i"}},
	{Kind: "k"},
	{Kind: "k", Projects: []string{"p"}},
	{Kind: "k", Projects: []string{"p"}, OrShared: true},
}

func (t *sqlTx) List(ctx context.Context, f Filter) ([]Record, error) {
	var ok bool
	if f, ok = storableFilter(f); !ok {
		return nil, nil
	}
	q, args := listQuery(f)
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	if byParent(f) {
		slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.ID, b.ID) })
	}
	return out, rows.Err()
}

func (t *sqlTx) Count(ctx context.Context, f Filter) (int, error) {
	var ok bool
	if f, ok = storableFilter(f); !ok {
		return 0, nil
	}
	w, args := where(f)
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM resources`+w, args...).Scan(&n)
	return n, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *sqlTx) Insert(ctx context.Context, r *Record) error {
	_, err := t.exec(ctx, qInsert,
		r.Kind, r.ID, r.ProjectID, r.ParentID, b2i(r.Shared), string(r.Doc))
	if err != nil && t.s.d.IsUnique(err) {
		return fmt.Errorf("%s %s: %w", r.Kind, r.ID, ErrConflict)
	}
	if err == nil {
		t.noted(r.Kind, r.ID, r.ProjectID, r.ParentID, "create")
	}
	return err
}

func (t *sqlTx) Ensure(ctx context.Context, r *Record) error {
	_, err := t.claim(ctx, qInsert, r.Kind, r.ID, r.ProjectID, r.ParentID, b2i(r.Shared), string(r.Doc))
	return err
}

func (t *sqlTx) Update(ctx context.Context, r *Record) error { return t.rewrite(ctx, r, "update") }

func (t *sqlTx) Observe(ctx context.Context, r *Record) error { return t.rewrite(ctx, r, "status") }

// rewrite writes a record back, noted in the feed as op.
func (t *sqlTx) rewrite(ctx context.Context, r *Record, op string) error {
	res, err := t.exec(ctx, qUpdate,
		r.ProjectID, r.ParentID, b2i(r.Shared), string(r.Doc), r.ID, r.Kind)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	t.noted(r.Kind, r.ID, r.ProjectID, r.ParentID, op)
	return nil
}

func (t *sqlTx) Delete(ctx context.Context, kind, id string) error {
	if !storable(id) {
		return ErrNotFound
	}
	var parent string
	err := t.queryRow(ctx, qDelete, id, kind).Scan(&parent)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	t.noted(kind, id, "", parent, "delete")
	return nil
}

// claim inserts a row guarded by a key, telling whether it was free.
func (t *sqlTx) claim(ctx context.Context, q string, args ...any) (bool, error) {
	if !strings.HasSuffix(q, onConflict) {
		q += onConflict
	}
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		if t.s.d.IsUnique(err) {
			return false, nil
		}
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *sqlTx) ClaimIP(ctx context.Context, a IPAllocation) (bool, error) {
	return t.claim(ctx, qClaimIP,
		a.SubnetID, a.IP, a.NetworkID, a.PortID)
}

func (t *sqlTx) ReleaseIP(ctx context.Context, subnetID, ip string) error {
	_, err := t.exec(ctx, qReleaseIP, subnetID, ip)
	return err
}

func (t *sqlTx) scanIPs(ctx context.Context, q string, args ...any) ([]IPAllocation, error) {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IPAllocation
	for rows.Next() {
		var a IPAllocation
		if err := rows.Scan(&a.SubnetID, &a.IP, &a.NetworkID, &a.PortID); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func (t *sqlTx) IPs(ctx context.Context, subnetIDs ...string) ([]IPAllocation, error) {
	if len(subnetIDs) == 0 {
		return nil, nil
	}
	args := make([]any, len(subnetIDs))
	for i, s := range subnetIDs {
		args[i] = s
	}
	return t.scanIPs(ctx, `SELECT subnet_id, ip, network_id, port_id FROM ip_allocations WHERE subnet_id IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+`)`, args...)
}

func (t *sqlTx) PortIPs(ctx context.Context, portID string) ([]IPAllocation, error) {
	return t.scanIPs(ctx, qPortIPs, portID)
}

func (t *sqlTx) ClaimMAC(ctx context.Context, networkID, mac, portID string) (bool, error) {
	return t.claim(ctx, qClaimMAC, networkID, mac, portID)
}

func (t *sqlTx) ReleaseMAC(ctx context.Context, networkID, mac string) error {
	_, err := t.exec(ctx, qReleaseMAC, networkID, mac)
	return err
}

func (t *sqlTx) ClaimSegment(ctx context.Context, a SegmentAllocation) (bool, error) {
	return t.claim(ctx, `INSERT INTO segment_allocations (network_type, physical_network, segmentation_id, segment_id, network_id) VALUES (?, ?, ?, ?, ?)`+onConflict,
		a.NetworkType, a.PhysicalNetwork, a.SegmentationID, a.SegmentID, a.NetworkID)
}

func (t *sqlTx) ReleaseSegment(ctx context.Context, segmentID string) error {
	_, err := t.exec(ctx, `DELETE FROM segment_allocations WHERE segment_id = ?`, segmentID)
	return err
}

func (t *sqlTx) SegmentIDs(ctx context.Context, networkType, physnet string) ([]int64, error) {
	rows, err := t.query(ctx, `SELECT segmentation_id FROM segment_allocations WHERE network_type = ? AND physical_network = ? ORDER BY segmentation_id`, networkType, physnet)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
