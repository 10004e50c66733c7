package store

import "context"

// The table behind references between records that the database keeps
// honest: a port's security groups, a rule's remote group or address
// group. The referring side cascades, the referred side is restricted.

func (t *sqlTx) AddRef(ctx context.Context, kind, from, to string) error {
	_, err := t.claim(ctx, qAddRef, kind, from, to)
	return err
}

func (t *sqlTx) DropRefs(ctx context.Context, kind, from string) error {
	_, err := t.exec(ctx, qDropRefs, kind, from)
	return err
}

func (t *sqlTx) RefsTo(ctx context.Context, kind, to string) ([]string, error) {
	rows, err := t.query(ctx, `SELECT from_id FROM resource_refs WHERE to_id = ? AND kind = ? ORDER BY from_id`, to, kind)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
