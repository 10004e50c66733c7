// Package record keeps the plugins' resource documents in store records:
// a record's document as JSON, reading records with the fault a missing
// one answers, and the records a caller owns.
package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"muon/internal/auth"
	"muon/internal/resource"
	"muon/internal/store"
)

// Decode reads a record's document. Numbers stay json.Number.
func Decode(r *store.Record) (resource.Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(r.Doc))
	dec.UseNumber()
	var d resource.Doc
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%s %s: corrupt document: %w", r.Kind, r.ID, err)
	}
	return d, nil
}

// New makes the record of a document: its id and project are the
// document's.
func New(kind string, d resource.Doc, parent string, shared bool) (*store.Record, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return &store.Record{Kind: kind, ID: resource.Str(d["id"]), ProjectID: resource.Str(d["project_id"]), ParentID: parent, Shared: shared, Doc: b}, nil
}

// Save writes a changed document back to its record.
func Save(ctx context.Context, tx store.Tx, r *store.Record, d resource.Doc) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	r.Doc = b
	return tx.Update(ctx, r)
}

// Get reads a record (locked for update with lock) and its document, or
// answers nf when there is none.
func Get(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf error) (*store.Record, resource.Doc, error) {
	return get(ctx, tx, kind, id, lock, nf, func(*store.Record) bool { return true })
}

// GetOwned is Get for the records the caller owns (any, for admins): it
// answers nf for another project's, as for a missing one.
func GetOwned(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf error) (*store.Record, resource.Doc, error) {
	return get(ctx, tx, kind, id, lock, nf, func(r *store.Record) bool {
		return auth.FromContext(ctx).Owns(r.ProjectID)
	})
}

func get(ctx context.Context, tx store.Tx, kind, id string, lock bool, nf error, ok func(*store.Record) bool) (*store.Record, resource.Doc, error) {
	read := tx.Get
	if lock {
		read = tx.Lock
	}
	r, err := read(ctx, kind, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !ok(r) {
		return nil, nil, nf
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := Decode(r)
	return r, d, err
}

// List reads the records a filter selects and their documents.
func List(ctx context.Context, tx store.Tx, f store.Filter) ([]store.Record, []resource.Doc, error) {
	recs, err := tx.List(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	docs := make([]resource.Doc, len(recs))
	for i := range recs {
		if docs[i], err = Decode(&recs[i]); err != nil {
			return nil, nil, err
		}
	}
	return recs, docs, nil
}

// Owned is the filter of the records of a kind the caller owns: its
// project's, or all for admins.
func Owned(ctx context.Context, kind string) store.Filter {
	cred := auth.FromContext(ctx)
	f := store.Filter{Kind: kind}
	if !cred.Admin() {
		f.Projects = []string{cred.ProjectID}
	}
	return f
}

// Updater runs a read-write transaction: a store.Store, or a plugin that
// lends its store.
type Updater interface {
	Update(ctx context.Context, fn func(tx store.Tx) error) error
}

// CreateAll runs one create per document in a single transaction: all are
// made or none (bulk create). Each works on a copy of its document, so a
// retried transaction starts from the request again; the copies, as
// made, are the answer.
func CreateAll(ctx context.Context, st Updater, docs []resource.Doc, create func(context.Context, store.Tx, resource.Doc) error) ([]resource.Doc, error) {
	out := make([]resource.Doc, 0, len(docs))
	err := st.Update(ctx, func(tx store.Tx) error {
		out = out[:0]
		for _, d := range docs {
			d = resource.Clone(d)
			if err := create(ctx, tx, d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
