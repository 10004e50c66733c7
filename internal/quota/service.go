package quota

import (
	"context"

	"muon/internal/auth"
	"muon/internal/fault"
	"muon/internal/store"
)

// Service answers the /v2.0/quotas API.
type Service struct {
	Engine *Engine
	Store  store.Store
}

func mayRead(ctx context.Context, project string) error {
	if c := auth.FromContext(ctx); c.Admin() || c.ProjectID == project {
		return nil
	}
	return fault.Forbidden("PolicyNotAuthorized", "(rule:get_quota) is disallowed by policy")
}

func adminOnly(ctx context.Context, action string) error {
	if auth.FromContext(ctx).Admin() {
		return nil
	}
	return fault.Forbidden("PolicyNotAuthorized", "(rule:%s_quota) is disallowed by policy", action)
}

func view(limits map[string]int64, project string) map[string]any {
	out := make(map[string]any, len(limits)+2)
	for k, v := range limits {
		out[k] = v
	}
	if project != "" {
		out["project_id"], out["tenant_id"] = project, project
	}
	return out
}

// List returns the projects with limits of their own (admin only).
func (s *Service) List(ctx context.Context) ([]map[string]any, error) {
	if err := adminOnly(ctx, "get"); err != nil {
		return nil, err
	}
	var out []map[string]any
	err := s.Store.View(ctx, func(tx store.Tx) error {
		ps, err := s.Engine.Projects(ctx, tx)
		if err != nil {
			return err
		}
		out = make([]map[string]any, 0, len(ps))
		for _, p := range ps {
			l, _, err := s.Engine.Limits(ctx, tx, p)
			if err != nil {
				return err
			}
			out = append(out, view(l, p))
		}
		return nil
	})
	return out, err
}

// Get returns a project's limits.
func (s *Service) Get(ctx context.Context, project string) (map[string]any, error) {
	if err := mayRead(ctx, project); err != nil {
		return nil, err
	}
	var out map[string]any
	err := s.Store.View(ctx, func(tx store.Tx) error {
		l, _, err := s.Engine.Limits(ctx, tx, project)
		out = view(l, project)
		return err
	})
	return out, err
}

// Default returns the default limits.
func (s *Service) Default(ctx context.Context, project string) (map[string]any, error) {
	if err := mayRead(ctx, project); err != nil {
		return nil, err
	}
	return view(s.Engine.Default(), project), nil
}

// Details returns limit, used and reserved for each quota.
func (s *Service) Details(ctx context.Context, project string) (map[string]any, error) {
	if err := mayRead(ctx, project); err != nil {
		return nil, err
	}
	out := map[string]any{}
	err := s.Store.View(ctx, func(tx store.Tx) error {
		l, _, err := s.Engine.Limits(ctx, tx, project)
		if err != nil {
			return err
		}
		u, err := s.Engine.Usage(ctx, tx, project)
		if err != nil {
			return err
		}
		for k, v := range l {
			out[k] = map[string]any{"limit": v, "used": u[k], "reserved": 0}
		}
		return nil
	})
	return out, err
}

// Update sets some of a project's limits (admin only).
func (s *Service) Update(ctx context.Context, project string, limits map[string]int64) (map[string]any, error) {
	if err := adminOnly(ctx, "update"); err != nil {
		return nil, err
	}
	var out map[string]any
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		l, err := s.Engine.Set(ctx, tx, project, limits)
		out = view(l, project)
		return err
	})
	return out, err
}

// Delete returns a project to the defaults (admin only).
func (s *Service) Delete(ctx context.Context, project string) error {
	if err := adminOnly(ctx, "delete"); err != nil {
		return err
	}
	return s.Store.Update(ctx, func(tx store.Tx) error { return s.Engine.Reset(ctx, tx, project) })
}
