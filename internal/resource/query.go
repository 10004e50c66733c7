package resource

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"muon/internal/fault"
)

// Query is a parsed list request.
type Query struct {
	Filters map[string][]string // attribute (or extra filter) -> any of
	Tags    TagFilter
	Fields  []string
	Sort    []SortKey
	Limit   int // 0: no limit
	Marker  string
	Reverse bool
}

// SortKey is one sort_key/sort_dir pair.
type SortKey struct {
	Attr string
	Desc bool
}

// TagFilter holds the four tag filters, each a list of tags.
type TagFilter struct {
	All, Any, NotAll, NotAny []string
}

func (t TagFilter) empty() bool {
	return len(t.All)+len(t.Any)+len(t.NotAll)+len(t.NotAny) == 0
}

// ParseQuery reads a list request's query string.
func (r *Resource) ParseQuery(q url.Values) (*Query, error) {
	out := &Query{Filters: map[string][]string{}}
	var dirs []string
	for k, vs := range q {
		switch k {
		case "fields":
			for _, v := range vs {
				for f := range strings.SplitSeq(v, ",") {
					if f = strings.TrimSpace(f); f != "" {
						out.Fields = append(out.Fields, f)
					}
				}
			}
		case "sort_key":
			for _, v := range vs {
				a := r.Attr(v)
				if a == nil || a.NoSort || a.Hidden {
					return nil, fault.BadRequest("%s is an invalid attribute for sort_keys", v)
				}
				out.Sort = append(out.Sort, SortKey{Attr: v})
			}
		case "sort_dir":
			dirs = vs
		case "limit":
			n, err := strconv.Atoi(vs[len(vs)-1])
			if err != nil || n < 0 {
				return nil, fault.New(400, "BadRequest", "Bad limit request: Limit must be an integer 0 or greater and not '%s'.", vs[len(vs)-1])
			}
			out.Limit = n
		case "marker":
			out.Marker = vs[len(vs)-1]
		case "page_reverse":
			b, err := parseBool(vs[len(vs)-1])
			if err != nil {
				return nil, fault.InvalidInput("%s", err.Error())
			}
			out.Reverse = b.(bool)
		case "tags", "tags-any", "not-tags", "not-tags-any":
			if !r.Tags {
				return nil, fault.BadRequest("%s is an invalid attribute for filtering", k)
			}
			var tags []string
			for _, v := range vs {
				for t := range strings.SplitSeq(v, ",") {
					if t != "" {
						tags = append(tags, t)
					}
				}
			}
			switch k {
			case "tags":
				out.Tags.All = tags
			case "tags-any":
				out.Tags.Any = tags
			case "not-tags":
				out.Tags.NotAll = tags
			default:
				out.Tags.NotAny = tags
			}
		default:
			if k == "tenant_id" {
				k = "project_id"
			}
			if a := r.Attr(k); a != nil && !a.NoFilter && !a.Hidden {
				if a.Type == Bool || a.Type == Int {
					// Neutron runs filter values through convert_to.
					for _, v := range vs {
						if _, err := a.Type.Parse(v); err != nil {
							return nil, fault.InvalidInput("%s", err.Error())
						}
					}
				}
				out.Filters[k] = append(out.Filters[k], vs...)
				continue
			}
			if _, ok := r.ExtraFilters[k]; ok {
				out.Filters[k] = append(out.Filters[k], vs...)
				continue
			}
			return nil, fault.BadRequest("[%s] is invalid attribute for filtering", k)
		}
	}
	// Neutron pairs sort_key and sort_dir by position and wants as many
	// of each.
	if len(dirs) != len(out.Sort) {
		return nil, fault.BadRequest("The number of sort_keys and sort_dirs must be same")
	}
	for i, d := range dirs {
		switch d {
		case "asc":
		case "desc":
			out.Sort[i].Desc = true
		default:
			return nil, fault.BadRequest("%s is an invalid value for sort_dir, valid value is 'asc' and 'desc'", d)
		}
	}
	if len(out.Fields) > 0 && !slices.Contains(out.Fields, "id") && (out.Limit > 0 || out.Marker != "") {
		// Pagination links need ids; Neutron fetches them and drops them.
		out.Fields = append(out.Fields, "id")
	}
	return out, nil
}

// Match tells whether a stored document passes the query's filters.
func (r *Resource) Match(d Doc, q *Query) bool {
	for k, want := range q.Filters {
		if f, ok := r.ExtraFilters[k]; ok {
			if !f(d, want) {
				return false
			}
			continue
		}
		a := r.Attr(k)
		if a.Match != nil {
			if !a.Match(d[k], want) {
				return false
			}
			continue
		}
		if !matchValue(a.Type, d[k], want) {
			return false
		}
	}
	if !q.Tags.empty() && !matchTags(d["tags"], q.Tags) {
		return false
	}
	return true
}

func matchValue(t Type, v any, want []string) bool {
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if matchValue(t, x, want) {
				return true
			}
		}
		return false
	}
	have := canonical(v)
	for _, w := range want {
		pv, err := t.Parse(w)
		if err != nil {
			continue
		}
		if canonical(pv) == have {
			return true
		}
	}
	return false
}

// canonical renders a scalar for comparison.
func canonical(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	case int64:
		return strconv.FormatInt(t, 10)
	case int:
		return strconv.Itoa(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func matchTags(v any, f TagFilter) bool {
	have := map[string]bool{}
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				have[s] = true
			}
		}
	}
	all := func(ts []string) bool {
		for _, t := range ts {
			if !have[t] {
				return false
			}
		}
		return true
	}
	anyOf := func(ts []string) bool {
		for _, t := range ts {
			if have[t] {
				return true
			}
		}
		return false
	}
	if len(f.All) > 0 && !all(f.All) {
		return false
	}
	if len(f.Any) > 0 && !anyOf(f.Any) {
		return false
	}
	if len(f.NotAll) > 0 && all(f.NotAll) {
		return false
	}
	if len(f.NotAny) > 0 && anyOf(f.NotAny) {
		return false
	}
	return true
}

// Sort orders documents by the query's sort keys; id breaks ties so that
// pagination is stable, as Neutron appends it.
func Sort(docs []Doc, keys []SortKey) {
	slices.SortStableFunc(docs, Comparer(keys))
}

// Comparer returns the ordering of the sort keys, with id appended.
func Comparer(keys []SortKey) func(a, b Doc) int {
	if !slices.ContainsFunc(keys, func(k SortKey) bool { return k.Attr == "id" }) {
		desc := len(keys) > 0 && keys[0].Desc
		keys = append(slices.Clone(keys), SortKey{Attr: "id", Desc: desc})
	}
	return func(a, b Doc) int {
		for _, k := range keys {
			c := compare(a[k.Attr], b[k.Attr])
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	}
}
func compare(a, b any) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		default:
			return 1
		}
	}
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return cmp.Compare(fa, fb)
		}
	}
	if ba, ok := a.(bool); ok {
		if bb, ok := b.(bool); ok {
			switch {
			case ba == bb:
				return 0
			case !ba:
				return -1
			default:
				return 1
			}
		}
	}
	return strings.Compare(canonical(a), canonical(b))
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	case int64:
		return float64(t), true
	case int:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

// Page applies marker, limit and page_reverse to documents sorted by q.Sort.
// The marker is the document named by q.Marker (nil for none); the page
// starts after its place in the order, whether or not it passed the
// filters. more tells whether items lie beyond the page in the reading
// direction.
func Page(docs []Doc, q *Query, marker Doc) (page []Doc, more bool) {
	cmpf := Comparer(q.Sort)
	if q.Reverse {
		docs = slices.Clone(docs)
		slices.Reverse(docs)
	}
	start := 0
	if marker != nil {
		start = len(docs)
		for i, d := range docs {
			c := cmpf(d, marker)
			if q.Reverse {
				c = -c
			}
			if c > 0 {
				start = i
				break
			}
		}
	}
	docs = docs[start:]
	if q.Limit > 0 && len(docs) > q.Limit {
		docs, more = docs[:q.Limit], true
	}
	if q.Reverse {
		docs = slices.Clone(docs)
		slices.Reverse(docs)
	}
	return docs, more
}

// Canonical renders a scalar value as filters compare it.
func Canonical(v any) string { return canonical(v) }
