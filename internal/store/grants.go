package store

import (
	"context"
	"strings"
)

// The tables behind names unique in a scope and role assignments, which
// the identity service keeps.

func (t *sqlTx) ClaimName(ctx context.Context, kind, scope, name, id string) (bool, error) {
	return t.claim(ctx, qClaimName, kind, scope, name, id)
}

func (t *sqlTx) ReleaseName(ctx context.Context, kind, scope, name string) error {
	_, err := t.exec(ctx, `DELETE FROM resource_names WHERE kind = ? AND scope = ? AND name = ?`, kind, scope, name)
	return err
}

func (t *sqlTx) NameID(ctx context.Context, kind, scope, name string) (string, error) {
	rows, err := t.query(ctx, `SELECT id FROM resource_names WHERE kind = ? AND scope = ? AND name = ?`, kind, scope, name)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return "", err
		}
		return "", ErrNotFound
	}
	var id string
	if err := rows.Scan(&id); err != nil {
		return "", err
	}
	return id, nil
}

func (t *sqlTx) AddGrant(ctx context.Context, g Grant) (bool, error) {
	return t.claim(ctx, `INSERT INTO role_assignments (actor_id, target_id, role_id) VALUES (?, ?, ?)`, g.ActorID, g.TargetID, g.RoleID)
}

func (t *sqlTx) RemoveGrant(ctx context.Context, g Grant) error {
	res, err := t.exec(ctx, `DELETE FROM role_assignments WHERE actor_id = ? AND target_id = ? AND role_id = ?`, g.ActorID, g.TargetID, g.RoleID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func (t *sqlTx) Grants(ctx context.Context, f Grant) ([]Grant, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"actor_id", f.ActorID}, {"target_id", f.TargetID}, {"role_id", f.RoleID}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := `SELECT actor_id, target_id, role_id FROM role_assignments`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	rows, err := t.query(ctx, q+` ORDER BY actor_id, target_id, role_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.ActorID, &g.TargetID, &g.RoleID); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
