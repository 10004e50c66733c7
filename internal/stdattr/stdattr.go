// Package stdattr keeps Neutron's standard attributes of a document: id,
// project, created_at and updated_at, revision_number and tags. The time
// is the caller's: each plugin has its own clock.
package stdattr

import (
	"context"
	"time"

	"github.com/google/uuid"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/resource"
)

// Timestamp is Neutron's created_at/updated_at format, in UTC.
func Timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Own gives a new document its id and project: the caller's when the
// document names none; another project's only for admins.
func Own(ctx context.Context, d resource.Doc) error {
	cred := auth.FromContext(ctx)
	proj := resource.Str(d["project_id"])
	switch {
	case proj == "":
		proj = cred.ProjectID
	case proj != cred.ProjectID && !cred.Admin():
		return fault.Forbidden("PolicyNotAuthorized", "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges")
	}
	d["id"] = uuid.NewString()
	d["project_id"] = proj
	delete(d, "tenant_id")
	return nil
}

// Stamp fills a new document's standard attributes: Own's, the
// timestamps, revision 0 and, with tags, an empty tag list unless given.
func Stamp(ctx context.Context, d resource.Doc, now time.Time, tags bool) error {
	if err := Own(ctx, d); err != nil {
		return err
	}
	ts := Timestamp(now)
	d["created_at"], d["updated_at"] = ts, ts
	d["revision_number"] = int64(0)
	if _, given := d["tags"]; tags && !given {
		d["tags"] = []any{}
	}
	return nil
}

// Touch bumps a changed document's revision and update time.
func Touch(d resource.Doc, now time.Time) {
	d["revision_number"] = resource.IntOf(d["revision_number"]) + 1
	d["updated_at"] = Timestamp(now)
}

// CheckRevision enforces If-Match: revision_number=N; a negative want
// checks nothing.
func CheckRevision(d resource.Doc, want int64) error {
	if want < 0 {
		return nil
	}
	if have := resource.IntOf(d["revision_number"]); have != want {
		return fault.New(412, "RevisionNumberConstraintFailed",
			"Constrained to %d, but current revision is %d", want, have)
	}
	return nil
}
