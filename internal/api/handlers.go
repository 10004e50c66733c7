package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/feature"
	"muon/internal/resource"
	"muon/internal/store"
)

func (s *Server) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeFault(w, r, err)
		}
	}
}

// writeFault is the one place errors become Neutron's fault body.
func (s *Server) writeFault(w http.ResponseWriter, r *http.Request, err error) {
	f, ok := fault.As(err)
	if !ok && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away (an agent stopping mid long poll): not a
		// server failure, and there is no one to answer.
		s.log.DebugContext(r.Context(), "request cancelled by the client", "method", r.Method, "path", r.URL.Path)
		return
	}
	if !ok && errors.Is(err, store.ErrUnavailable) {
		// The database is down, full or read-only: say so once a minute,
		// and tell clients to come back.
		if now := time.Now().UnixMilli(); now-s.unavailableLogged.Load() > time.Minute.Milliseconds() {
			s.unavailableLogged.Store(now)
			s.log.ErrorContext(r.Context(), "the database is unavailable; answering 503 until it is back", "err", err)
		}
		w.Header().Set("Retry-After", "5")
		f = &fault.Error{Status: http.StatusServiceUnavailable, Type: "ServiceUnavailable",
			Message: "The service is unavailable: its database cannot be reached or written. Retry later."}
		ok = true
	}
	if !ok {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		f = &fault.Error{Status: http.StatusInternalServerError, Type: "HTTPInternalServerError",
			Message: "Request Failed: internal server error while processing your request."}
	} else if f.Err != nil {
		s.log.InfoContext(r.Context(), "request refused", "type", f.Type, "err", f.Err)
	}
	writeJSON(w, f.Status, map[string]any{"NeutronError": map[string]any{
		"type": f.Type, "message": f.Message, "detail": "",
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"NeutronError": {"type": "HTTPInternalServerError", "message": "response encoding failed", "detail": ""}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func errNotFoundPath(r *http.Request) error {
	return fault.NotFound("HTTPNotFound", "The resource could not be found.")
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.maxBody {
		return nil, fault.New(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault.New(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
		}
		return nil, fault.BadRequest("Failed to read the request body")
	}
	return b, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	res := svc.Res
	q, err := res.ParseQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	if st, ok := svc.Backend.(feature.Streamer); ok && byID(q) {
		return s.streamList(w, r, svc, q, st)
	}
	docs, err := svc.Backend.List(ctx, q)
	if err != nil {
		return err
	}
	// The backend's slice is this request's: filtered in place.
	out := docs[:0]
	for _, d := range docs {
		if res.Match(d, q) {
			out = append(out, d)
		}
	}
	clear(docs[len(out):])
	if out, err = s.readable(ctx, svc, out); err != nil {
		return err
	}
	paging := q.Limit > 0 || q.Marker != "" || len(q.Sort) > 0
	if paging {
		resource.Sort(out, q.Sort)
	}
	if q.Limit > 0 || q.Marker != "" {
		var marker resource.Doc
		if q.Marker != "" {
			if marker, err = svc.Backend.Get(ctx, q.Marker); err != nil {
				return err
			}
		}
		out, _ = resource.Page(out, q, marker)
	}
	lw := s.startList(w, r, svc, q)
	for i, d := range out {
		if err := lw.write(d); err != nil {
			return lw.cut(err)
		}
		out[i] = nil // let go once written
	}
	return lw.end()
}

// listWriter streams a list's answer a document at a time, so a long list
// is never held twice (documents and views) nor as one body; it keeps the
// page's first and last ids for the links.
type listWriter struct {
	s           *Server
	r           *http.Request
	res         *resource.Resource
	q           *resource.Query
	admin       bool
	bw          *bufio.Writer
	n           int
	first, last string
}

// startList writes the status and the opening of a list's answer.
func (s *Server) startList(w http.ResponseWriter, r *http.Request, svc *feature.Service, q *resource.Query) *listWriter {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	lw := &listWriter{s: s, r: r, res: svc.Res, q: q, admin: s.seesAll(auth.FromContext(r.Context())), bw: bufio.NewWriterSize(w, 32<<10)}
	lw.bw.WriteString(`{"` + svc.Res.Key() + `":[`)
	return lw
}

func (lw *listWriter) write(d resource.Doc) error {
	b, err := json.Marshal(lw.res.View(d, lw.admin, lw.q.Fields))
	if err != nil {
		return err
	}
	if lw.n > 0 {
		lw.bw.WriteByte(',')
	}
	lw.bw.Write(b)
	id := resource.Str(d["id"])
	if lw.n == 0 {
		lw.first = id
	}
	lw.last = id
	lw.n++
	return nil
}

// end closes the answer, with the page links when the list has a limit.
func (lw *listWriter) end() error {
	lw.bw.WriteByte(']')
	if lw.q.Limit > 0 {
		links, err := json.Marshal(pageLinks(lw.r, lw.q, lw.first, lw.last, lw.n))
		if err != nil {
			return lw.cut(err)
		}
		lw.bw.WriteString(`,"` + lw.res.Key() + `_links":`)
		lw.bw.Write(links)
	}
	lw.bw.WriteByte('}')
	if err := lw.bw.Flush(); err != nil {
		lw.s.log.DebugContext(lw.r.Context(), "list: the client went away", "path", lw.r.URL.Path, "err", err)
	}
	return nil
}

// cut ends an answer whose status is out: all that is left is to log.
func (lw *listWriter) cut(err error) error {
	lw.s.log.ErrorContext(lw.r.Context(), "list: failed while streaming", "path", lw.r.URL.Path, "err", err)
	return nil
}

// byID tells whether a list's order is its ids', forwards: what a
// Streamer gives.
func byID(q *resource.Query) bool {
	if q.Reverse {
		return false
	}
	return len(q.Sort) == 0 || len(q.Sort) == 1 && q.Sort[0].Attr == "id" && !q.Sort[0].Desc
}

// streamList answers a list in id order from a Streamer: documents are
// read from the marker on, decoded, filtered and checked by policy a chunk
// at a time and written as they come, up to the page's limit, so neither
// the list nor what precedes the page is ever held.
func (s *Server) streamList(w http.ResponseWriter, r *http.Request, svc *feature.Service, q *resource.Query, st feature.Streamer) error {
	ctx := r.Context()
	after := ""
	if q.Marker != "" {
		m, err := svc.Backend.Get(ctx, q.Marker)
		if err != nil {
			return err
		}
		after = resource.Str(m["id"])
	}
	next, stop := iter.Pull2(st.ListSeq(ctx, q, after))
	defer stop()
	// The first document, or the error of the first read, before the
	// status goes out: a database that is down is a 503, not a cut answer.
	first, ferr, more := next()
	if ferr != nil {
		return ferr
	}
	lw := s.startList(w, r, svc, q)
	full := func() bool { return q.Limit > 0 && lw.n >= q.Limit }
	batch := make([]resource.Doc, 0, readChunk)
	flush := func() error {
		docs, err := s.readable(ctx, svc, batch)
		if err != nil {
			return err
		}
		for _, d := range docs {
			if full() {
				break
			}
			if err := lw.write(d); err != nil {
				return err
			}
		}
		clear(batch)
		batch = batch[:0]
		return nil
	}
	for d := first; more && !full(); d, ferr, more = next() {
		if ferr != nil {
			return lw.cut(ferr)
		}
		if !svc.Res.Match(d, q) {
			continue
		}
		batch = append(batch, d)
		// A chunk is no larger than what is left of the page, so that a
		// page reads about a page.
		want := readChunk
		if q.Limit > 0 {
			want = min(readChunk, q.Limit-lw.n)
		}
		if len(batch) >= want {
			if err := flush(); err != nil {
				return lw.cut(err)
			}
		}
	}
	if err := flush(); err != nil {
		return lw.cut(err)
	}
	return lw.end()
}

// pageLinks builds Neutron's next/previous links: next unless a forward
// read came up short, previous unless a reverse read did.
func pageLinks(r *http.Request, q *resource.Query, first, last string, n int) []map[string]string {
	links := []map[string]string{}
	link := func(rel, marker string, reverse bool) {
		v := url.Values{}
		for k, vs := range r.URL.Query() {
			if k != "marker" && k != "page_reverse" {
				v[k] = vs
			}
		}
		v.Set("marker", marker)
		if reverse {
			v.Set("page_reverse", "True")
		}
		links = append(links, map[string]string{"rel": rel, "href": selfURL(r) + "?" + v.Encode()})
	}
	if n == 0 {
		return links
	}
	short := n < q.Limit
	if !(short && !q.Reverse) {
		link("next", last, false)
	}
	if !(short && q.Reverse) {
		link("previous", first, true)
	}
	return links
}

var schemeRE = regexp.MustCompile(`^https?$`)

// selfURL is the request's own URL without the query, honouring a proxy's
// X-Forwarded-Proto.
func selfURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); schemeRE.MatchString(p) {
		scheme = p
	}
	return scheme + "://" + r.Host + r.URL.Path
}

func (s *Server) show(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	d, err := s.showable(r.Context(), svc, r.PathValue("id"))
	if err != nil {
		return err
	}
	var fields []string
	for _, v := range r.URL.Query()["fields"] {
		for f := range strings.SplitSeq(v, ",") {
			if f != "" {
				fields = append(fields, f)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{svc.Res.Name: svc.Res.View(d, s.seesAll(s.cred(r)), fields)})
	return nil
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	docs, bulk, err := svc.Res.DecodeBody(body, !svc.NoBulk)
	if err != nil {
		return err
	}
	ctx := r.Context()
	admin := s.seesAll(auth.FromContext(ctx))
	targets := make([]map[string]any, len(docs))
	for i, d := range docs {
		attrs := setAttrs(svc.Res, d, true)
		if err := svc.Res.PrepareCreate(d, admin); err != nil {
			return err
		}
		if targets[i], err = s.authorizeCreate(ctx, svc, d, attrs); err != nil {
			return err
		}
	}
	made, err := svc.Backend.Create(ctx, docs)
	if err != nil {
		return err
	}
	shown := made[:0:0]
	for i, d := range made {
		var t map[string]any
		if i < len(targets) {
			t = targets[i]
		}
		v, ok := s.createdView(ctx, svc, d, t)
		if !ok {
			// Made, but its creator may not read it: only the id.
			v = resource.Doc{"id": d["id"]}
		}
		shown = append(shown, v)
	}
	made = shown
	if bulk {
		views := make([]resource.Doc, len(made))
		for i, d := range made {
			views[i] = svc.Res.View(d, admin, nil)
		}
		writeJSON(w, http.StatusCreated, map[string]any{svc.Res.Key(): views})
		return nil
	}
	writeJSON(w, http.StatusCreated, map[string]any{svc.Res.Name: svc.Res.View(made[0], admin, nil)})
	return nil
}

// ifMatch reads If-Match: revision_number=N (quoted or not); -1 when
// absent. Other etags are ignored, as Neutron does.
func ifMatch(r *http.Request) (int64, error) {
	h := strings.Join(r.Header.Values("If-Match"), ",")
	if h == "" {
		return -1, nil
	}
	rev, found := int64(-1), false
	for part := range strings.SplitSeq(h, ",") {
		part = strings.Trim(strings.TrimPrefix(strings.TrimSpace(part), "W/"), `"`)
		v, ok := strings.CutPrefix(part, "revision_number=")
		if !ok {
			continue
		}
		if found {
			return 0, fault.New(http.StatusBadRequest, "BadRequest", "Bad if-match request: Multiple revision_number etags are not supported.")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fault.New(http.StatusBadRequest, "BadRequest", "Bad if-match request: Revision number etag must be in the format of revision_number=<int>.")
		}
		rev, found = n, true
	}
	return rev, nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	docs, _, err := svc.Res.DecodeBody(body, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	admin := s.seesAll(auth.FromContext(ctx))
	attrs := setAttrs(svc.Res, docs[0], false)
	if err := svc.Res.PrepareUpdate(docs[0], admin); err != nil {
		return err
	}
	if err := s.authorizeChange(ctx, svc, "update_", r.PathValue("id"), docs[0], attrs); err != nil {
		return err
	}
	d, err := svc.Backend.Update(ctx, r.PathValue("id"), docs[0], rev)
	if err != nil {
		return err
	}
	if d, err = s.hide(ctx, svc, d); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{svc.Res.Name: svc.Res.View(d, admin, nil)})
	return nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	rev, err := ifMatch(r)
	if err != nil {
		return err
	}
	if body, err := s.readBody(w, r); err != nil {
		return err
	} else if len(body) > 0 {
		return fault.BadRequest("Request body is not supported in DELETE.")
	}
	if err := s.authorizeChange(r.Context(), svc, "delete_", r.PathValue("id"), nil, nil); err != nil {
		return err
	}
	if err := svc.Backend.Delete(r.Context(), r.PathValue("id"), rev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) action(w http.ResponseWriter, r *http.Request, svc *feature.Service, name string, act feature.Action) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := s.authorizeChange(r.Context(), svc, name, r.PathValue("id"), nil, nil); err != nil {
		return err
	}
	out, err := act(r.Context(), r.PathValue("id"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Tags: /v2.0/{collection}/{id}/tags[/{tag}].

func (s *Server) tagged(r *http.Request, svc *feature.Service) ([]string, error) {
	d, err := s.showable(r.Context(), svc, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return tagList(d), nil
}

func tagList(d resource.Doc) []string {
	var out []string
	if l, ok := d["tags"].([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func validTag(t string) error {
	if t == "" || len(t) > 255 || strings.Contains(t, ",") {
		return fault.BadRequest("Invalid input for operation: '%s' is not a valid tag.", t)
	}
	return nil
}

func (s *Server) editTags(r *http.Request, svc *feature.Service, edit func([]string) ([]string, error)) ([]string, error) {
	if _, err := s.tagged(r, svc); err != nil {
		return nil, err
	}
	if err := s.authorizeChange(r.Context(), svc, "update_", r.PathValue("id"), nil, nil); err != nil {
		return nil, err
	}
	return s.tags.SetTags(r.Context(), svc.Res.Name, r.PathValue("id"), edit)
}

func (s *Server) getTags(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	tags, err := s.tagged(r, svc)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(tags)})
	return nil
}

func (s *Server) replaceTags(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var in struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Tags == nil {
		return fault.BadRequest("Invalid input for operation: the body must be {\"tags\": [...]}.")
	}
	for _, t := range in.Tags {
		if err := validTag(t); err != nil {
			return err
		}
	}
	tags, err := s.editTags(r, svc, func([]string) ([]string, error) { return dedupe(in.Tags), nil })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": nonNil(tags)})
	return nil
}

func (s *Server) clearTags(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	if _, err := s.editTags(r, svc, func([]string) ([]string, error) { return nil, nil }); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) hasTag(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	tags, err := s.tagged(r, svc)
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if !slices.Contains(tags, tag) {
		return fault.NotFound("TagNotFound", "Tag %s could not be found for %s %s.", tag, svc.Res.Name, r.PathValue("id"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) addTag(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	tag := r.PathValue("tag")
	if err := validTag(tag); err != nil {
		return err
	}
	if _, err := s.editTags(r, svc, func(tags []string) ([]string, error) {
		if slices.Contains(tags, tag) {
			return tags, nil
		}
		return append(tags, tag), nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) removeTag(w http.ResponseWriter, r *http.Request, svc *feature.Service) error {
	tag := r.PathValue("tag")
	if _, err := s.editTags(r, svc, func(tags []string) ([]string, error) {
		i := slices.Index(tags, tag)
		if i < 0 {
			return nil, fault.NotFound("TagNotFound", "Tag %s could not be found for %s %s.", tag, svc.Res.Name, r.PathValue("id"))
		}
		return slices.Delete(tags, i, i+1), nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func dedupe(ts []string) []string {
	var out []string
	for _, t := range ts {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

func nonNil(ts []string) []string {
	if ts == nil {
		return []string{}
	}
	return ts
}
