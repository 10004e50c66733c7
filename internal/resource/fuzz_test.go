package resource

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"muon/internal/fault"
)

// testResource has an attribute of every type and kind: required,
// defaulted, nullable, read-only, hidden, admin-only, validated,
// unfilterable and unsortable, plus tags and an extra filter.
func testResource() *Resource {
	r := &Resource{Name: "widget", Collection: "widgets", Tags: true, Attrs: append(Standard(true, true),
		Attr{Name: "parent_id", Type: UUID, Post: true, Required: true},
		Attr{Name: "enabled", Type: Bool, Post: true, Put: true, Default: true, HasDefault: true},
		Attr{Name: "size", Type: Int, Post: true, Put: true, Validate: func(v any) error {
			if v.(int64) < 0 {
				return fault.BadRequest("Invalid input for size. Reason: '%d' should be non-negative.", v)
			}
			return nil
		}},
		Attr{Name: "kind", Type: String(8), Post: true, Nullable: true, Default: nil, HasDefault: true},
		Attr{Name: "labels", Type: StringList, Post: true, Put: true, Default: []any{}, HasDefault: true, NoSort: true},
		Attr{Name: "rules", Type: ListOf(Dict), Post: true, Put: true, NoFilter: true, NoSort: true},
		Attr{Name: "profile", Type: Dict, Post: true, Put: true, AdminOnly: true, Nullable: true, NoFilter: true, NoSort: true},
		Attr{Name: "blob", Type: Any, Post: true, Put: true, NoFilter: true, NoSort: true},
		Attr{Name: "status", Type: String(16)},
		Attr{Name: "secret", Type: String(0), Post: true, Hidden: true},
		Attr{Name: "internal", Type: Int, Hidden: true},
	)}
	r.ExtraFilters = map[string]func(Doc, []string) bool{
		"name_substr": func(d Doc, want []string) bool {
			n, _ := d["name"].(string)
			return slices.ContainsFunc(want, func(w string) bool { return strings.Contains(n, w) })
		},
	}
	return r.Init()
}

// checkFault fails unless err is a *fault.Error a client may be given for
// bad input.
func checkFault(t *testing.T, what string, err error) {
	t.Helper()
	var f *fault.Error
	if !errors.As(err, &f) {
		t.Fatalf("%s: %T %v is not a *fault.Error", what, err, err)
	}
	if f.Status != 400 && f.Status != 403 && f.Status != 413 {
		t.Fatalf("%s: status %d (%s %s)", what, f.Status, f.Type, f.Message)
	}
	if f.Type == "" || f.Message == "" {
		t.Fatalf("%s: fault without type or message: %+v", what, f)
	}
}

func FuzzDecodePrepare(f *testing.F) {
	for _, s := range []string{
		`{"widget": {"parent_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4"}}`,
		`{"widget": {"parent_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", "enabled": "yes", "size": "12", "kind": null, "labels": ["a"], "rules": [{"x": 1}], "profile": {"a": [1, 2]}, "blob": 1.5e300}}`,
		`{"widget": {"parent_id": "x", "size": 1.5}}`,
		`{"widget": {"parent_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", "tenant_id": "a", "project_id": "b"}}`,
		`{"widget": {"id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4", "status": "UP", "internal": 1, "nope": 2}}`,
		`{"widget": {"name": null, "enabled": 2, "size": 99999999999999999999, "kind": "toolongvalue"}}`,
		`{"widgets": [{"widget": {"parent_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4"}}, {"parent_id": "6ee6e4a1-3e4e-4a39-a4d1-97d3b3b8a7a4"}]}`,
		`{"widgets": []}`,
		`{"widgets": [null, 1, "x"]}`,
		`{"widget": {"labels": [1], "rules": [[]], "profile": "p"}}`,
		`{"widget": {}} {}`,
		`{"widget": `,
		`[]`,
		`null`,
		``,
	} {
		f.Add(s, false, true)
		f.Add(s, true, false)
	}
	r := testResource()
	f.Fuzz(func(t *testing.T, body string, admin, create bool) {
		docs, bulk, err := r.DecodeBody([]byte(body), create)
		if err != nil {
			checkFault(t, "decode", err)
			return
		}
		if len(docs) == 0 || bulk && !create || !bulk && len(docs) != 1 {
			t.Fatalf("decode gave %d docs, bulk %v, for create %v", len(docs), bulk, create)
		}
		for _, d := range docs {
			if d == nil {
				t.Fatal("decode gave a nil doc")
			}
			if create {
				err = r.PrepareCreate(d, admin)
			} else {
				err = r.PrepareUpdate(d, admin)
			}
			if err != nil {
				checkFault(t, "prepare", err)
				continue
			}
			for k, v := range d {
				a := r.Attr(k)
				if a == nil {
					t.Fatalf("prepared doc has unknown key %q", k)
				}
				if create && !a.Post || !create && !a.Put {
					t.Fatalf("prepared doc sets read-only %q", k)
				}
				if a.AdminOnly && !admin {
					t.Fatalf("non-admin set %q", k)
				}
				if v == nil && !a.Nullable {
					t.Fatalf("%q is null", k)
				}
			}
			if create {
				if _, ok := d["parent_id"]; !ok {
					t.Fatal("required parent_id missing")
				}
				if _, ok := d["tenant_id"]; ok {
					t.Fatal("tenant_id left in a prepared create")
				}
			}
			r.View(d, admin, nil) // must not panic
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"name=a&name=b&enabled=true&size=3",
		"enabled=maybe",
		"size=x",
		"sort_key=name&sort_dir=asc&sort_key=id&sort_dir=desc",
		"sort_dir=asc",
		"sort_key=rules&sort_dir=asc",
		"sort_key=name&sort_dir=up",
		"limit=2&marker=abc&page_reverse=True&fields=id,name",
		"limit=-1",
		"limit=99999999999999999999",
		"page_reverse=sideways",
		"tags=a,b&tags-any=c&not-tags=d&not-tags-any=e,,f",
		"tenant_id=p1&project_id=p2",
		"secret=x",
		"internal=1",
		"rules=x",
		"colour=red",
		"name_substr=ab",
		"%zz=1",
		"fields=&fields=,,",
	} {
		f.Add(s)
	}
	r := testResource()
	docs := []Doc{
		{"id": "a", "name": "x", "enabled": true, "size": int64(3), "labels": []any{"l"}, "tags": []any{"a", "b"}, "kind": nil},
		{"id": "b", "name": "y", "enabled": false, "size": int64(1), "labels": []any{}, "tags": []any{}, "project_id": "p1"},
		{"id": "c"},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http would have answered the client already
		}
		q, err := r.ParseQuery(v)
		if err != nil {
			checkFault(t, "parse", err)
			return
		}
		if q.Limit < 0 {
			t.Fatalf("negative limit %d", q.Limit)
		}
		for k := range q.Filters {
			a := r.Attr(k)
			_, extra := r.ExtraFilters[k]
			if !extra && (a == nil || a.NoFilter || a.Hidden) {
				t.Fatalf("accepted filter %q", k)
			}
		}
		for _, s := range q.Sort {
			if a := r.Attr(s.Attr); a == nil || a.NoSort || a.Hidden {
				t.Fatalf("accepted sort key %q", s.Attr)
			}
		}
		for _, d := range docs {
			r.Match(d, q)
		}
		ds := slices.Clone(docs)
		Sort(ds, q.Sort)
		Page(ds, q, ds[0])
		Page(ds, q, nil)
	})
}

func ids(ds []Doc) string {
	var s []string
	for _, d := range ds {
		s = append(s, d["id"].(string))
	}
	return strings.Join(s, ",")
}

func TestMatch(t *testing.T) {
	r := testResource()
	docs := []Doc{
		{"id": "a", "name": "x", "enabled": true, "size": int64(3), "labels": []any{"red", "blue"}, "tags": []any{"t1", "t2"}, "project_id": "p1"},
		{"id": "b", "name": "y", "enabled": false, "size": int64(1), "labels": []any{}, "tags": []any{"t2"}, "project_id": "p2"},
		{"id": "c", "name": "", "enabled": true, "size": nil, "tags": []any{}, "project_id": "p1"},
	}
	cases := []struct {
		name, query, want string
	}{
		{"none", "", "a,b,c"},
		{"repeated-is-or", "name=x&name=y", "a,b"},
		{"keys-are-and", "name=x&name=y&enabled=false", "b"},
		{"bool-true", "enabled=true", "a,c"},
		{"bool-words", "enabled=No", "b"},
		{"bool-one", "enabled=1", "a,c"},
		{"int", "size=3", "a"},
		{"int-space", "size=%203", "a"},
		{"empty-string", "name=", "c"},
		{"list-any-item", "labels=blue", "a"},
		{"tenant-is-project", "tenant_id=p1", "a,c"},
		{"extra-filter", "name_substr=x", "a"},
		{"tags-all", "tags=t1,t2", "a"},
		{"tags-all-repeated", "tags=t1&tags=t2", "a"},
		{"tags-any", "tags-any=t1,t2", "a,b"},
		{"not-tags", "not-tags=t1,t2", "b,c"},
		{"not-tags-any", "not-tags-any=t1,t2", "c"},
		{"tags-and-filter", "tags=t2&enabled=false", "b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, _ := url.ParseQuery(c.query)
			q, err := r.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			var got []Doc
			for _, d := range docs {
				if r.Match(d, q) {
					got = append(got, d)
				}
			}
			if ids(got) != c.want {
				t.Errorf("got %s, want %s", ids(got), c.want)
			}
		})
	}
}

func TestParseQueryRefuses(t *testing.T) {
	r := testResource()
	for _, c := range []struct{ name, query, typ string }{
		{"unknown", "colour=red", "HTTPBadRequest"},
		{"hidden", "secret=x", "HTTPBadRequest"},
		{"nofilter", "rules=x", "HTTPBadRequest"},
		{"bad-bool", "enabled=maybe", "InvalidInput"},
		{"bad-int", "size=three", "InvalidInput"},
		{"sort-dir-alone", "sort_dir=asc", "HTTPBadRequest"},
		{"sort-count", "sort_key=name&sort_key=id&sort_dir=asc", "HTTPBadRequest"},
		{"sort-dir-bad", "sort_key=name&sort_dir=up", "HTTPBadRequest"},
		{"sort-key-nosort", "sort_key=labels&sort_dir=asc", "HTTPBadRequest"},
		{"limit-word", "limit=ten", "BadRequest"},
		{"limit-negative", "limit=-2", "BadRequest"},
		{"page-reverse", "page_reverse=maybe", "InvalidInput"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, _ := url.ParseQuery(c.query)
			_, err := r.ParseQuery(v)
			f, ok := fault.As(err)
			if !ok || f.Status != 400 || f.Type != c.typ {
				t.Fatalf("got %v, want 400 %s", err, c.typ)
			}
		})
	}
}

func TestSortPage(t *testing.T) {
	docs := []Doc{
		{"id": "d", "name": "b", "size": int64(2), "enabled": true},
		{"id": "a", "name": "a", "size": int64(10), "enabled": false},
		{"id": "c", "name": "b", "size": nil, "enabled": true},
		{"id": "b", "name": "c", "size": int64(1), "enabled": false},
	}
	byID := map[string]Doc{}
	for _, d := range docs {
		byID[d["id"].(string)] = d
	}
	cases := []struct {
		name    string
		sort    []SortKey
		limit   int
		marker  string
		reverse bool
		want    string
		more    bool
	}{
		{name: "default-id", want: "a,b,c,d"},
		{name: "name-asc-id-tiebreak", sort: []SortKey{{Attr: "name"}}, want: "a,c,d,b"},
		{name: "name-desc-id-desc", sort: []SortKey{{Attr: "name", Desc: true}}, want: "b,d,c,a"},
		{name: "two-keys", sort: []SortKey{{Attr: "name"}, {Attr: "id", Desc: true}}, want: "a,d,c,b"},
		{name: "numbers-not-strings", sort: []SortKey{{Attr: "size"}}, want: "c,b,d,a"},
		{name: "bools", sort: []SortKey{{Attr: "enabled"}}, want: "a,b,c,d"},
		{name: "limit", sort: []SortKey{{Attr: "name"}}, limit: 2, want: "a,c", more: true},
		{name: "limit-exact", limit: 4, want: "a,b,c,d"},
		{name: "marker", sort: []SortKey{{Attr: "name"}}, limit: 2, marker: "c", want: "d,b"},
		{name: "marker-last", sort: []SortKey{{Attr: "name"}}, limit: 2, marker: "b", want: ""},
		{name: "marker-no-limit", marker: "b", want: "c,d"},
		{name: "reverse", sort: []SortKey{{Attr: "name"}}, limit: 2, marker: "b", reverse: true, want: "c,d", more: true},
		{name: "reverse-start", sort: []SortKey{{Attr: "name"}}, limit: 2, marker: "c", reverse: true, want: "a"},
		{name: "reverse-desc", sort: []SortKey{{Attr: "size", Desc: true}}, limit: 1, marker: "b", reverse: true, want: "d", more: true},
		{name: "reverse-no-marker", limit: 3, reverse: true, want: "b,c,d", more: true},
		{name: "marker-filtered-out", sort: []SortKey{{Attr: "name"}}, marker: "x", want: "c,d,b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ds := slices.Clone(docs)
			Sort(ds, c.sort)
			q := &Query{Sort: c.sort, Limit: c.limit, Marker: c.marker, Reverse: c.reverse}
			var marker Doc
			if c.marker == "x" {
				// a marker that did not pass the filters still places the page
				marker = Doc{"id": "x", "name": "a"}
			} else if c.marker != "" {
				marker = byID[c.marker]
			}
			page, more := Page(ds, q, marker)
			if ids(page) != c.want || more != c.more {
				t.Errorf("got %s (more %v), want %s (more %v)", ids(page), more, c.want, c.more)
			}
		})
	}
}
