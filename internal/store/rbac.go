package store

import (
	"context"
	"strings"
)

// The table behind RBAC policies: one grant per policy, unique per
// object, target and action.

func (t *sqlTx) AddRBACGrant(ctx context.Context, g RBACGrant) (bool, error) {
	return t.claim(ctx, `INSERT INTO rbac_grants (policy_id, object_type, object_id, target_project, action) VALUES (?, ?, ?, ?, ?)`,
		g.PolicyID, g.ObjectType, g.ObjectID, g.Target, g.Action)
}

func (t *sqlTx) RetargetRBACGrant(ctx context.Context, policyID, target string) (bool, error) {
	gs, err := t.RBACGrants(ctx, RBACGrant{PolicyID: policyID})
	if err != nil {
		return false, err
	}
	if len(gs) == 0 {
		return false, ErrNotFound
	}
	// Delete and claim again: an UPDATE that broke the key would abort a
	// PostgreSQL transaction.
	if _, err := t.exec(ctx, `DELETE FROM rbac_grants WHERE policy_id = ?`, policyID); err != nil {
		return false, err
	}
	g := gs[0]
	g.Target = target
	return t.AddRBACGrant(ctx, g)
}

func (t *sqlTx) RBACGrants(ctx context.Context, f RBACGrant) ([]RBACGrant, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{
		{"policy_id", f.PolicyID}, {"object_type", f.ObjectType}, {"object_id", f.ObjectID},
		{"target_project", f.Target}, {"action", f.Action},
	} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := `SELECT policy_id, object_type, object_id, target_project, action FROM rbac_grants`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	rows, err := t.query(ctx, q+` ORDER BY policy_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RBACGrant
	for rows.Next() {
		var g RBACGrant
		if err := rows.Scan(&g.PolicyID, &g.ObjectType, &g.ObjectID, &g.Target, &g.Action); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
