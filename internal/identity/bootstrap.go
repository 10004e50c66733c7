package identity

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"muon/internal/store"
)

// BootstrapOptions are the passwords Bootstrap sets. An empty one is
// generated for a user Bootstrap creates and left alone for a user that
// exists; a given one is set either way.
type BootstrapOptions struct {
	AdminPassword  string
	DemoPassword   string
	ReaderPassword string
}

// BootstrapResult names what Bootstrap made or found. A password is empty
// when the user existed and none was given: the caller must have kept it.
type BootstrapResult struct {
	DomainID       string
	DomainName     string
	AdminProjectID string
	AdminUserID    string
	AdminPassword  string
	DemoProjectID  string
	DemoUserID     string
	DemoPassword   string
	// ReaderUserID is user "reader", with the reader role on demo.
	ReaderUserID   string
	ReaderPassword string
	// Roles maps role names (admin, member, reader, service) to ids.
	Roles map[string]string
}

// Bootstrap makes, idempotently, what a fresh cloud needs: the signing
// key, domain "default" (named Default), roles admin, member, reader and
// service, project "admin" with user "admin" (admin on it and on the
// system), project "demo" with user "demo" (member) and user "reader"
// (reader).
func Bootstrap(ctx context.Context, st store.Store, opts BootstrapOptions) (*BootstrapResult, error) {
	if _, err := ensureKeys(ctx, st, time.Now()); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	res := &BootstrapResult{DomainID: "default", DomainName: "Default", Roles: map[string]string{}}
	// Hash outside the transaction: bcrypt is slow on purpose.
	hashes := map[string]string{}
	for _, pw := range []*string{&opts.AdminPassword, &opts.DemoPassword, &opts.ReaderPassword} {
		if *pw == "" {
			continue
		}
		h, err := hashPassword(*pw)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		hashes[*pw] = h
	}
	generated := map[string]string{}
	for _, name := range []string{"admin", "demo", "reader"} {
		pw := randomPassword()
		h, err := hashPassword(pw)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		generated[name] = pw
		hashes[pw] = h
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := ensureSystem(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Get(ctx, kindDomain, res.DomainID); errors.Is(err, store.ErrNotFound) {
			d := &domainDoc{ID: res.DomainID, Name: res.DomainName, Description: "The default domain", Enabled: true, Tags: []string{}}
			if err := put(ctx, tx, true, kindDomain, d.ID, "", d); err != nil {
				return err
			}
			if err := claimName(ctx, tx, nameDomain, "", d.Name, d.ID, "domain"); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		for _, name := range []string{"admin", "member", "reader", "service"} {
			id, err := ensureNamed(ctx, tx, nameRole, "", name, func(id string) error {
				role := &roleDoc{ID: id, Name: name}
				return put(ctx, tx, true, kindRole, id, "", role)
			})
			if err != nil {
				return err
			}
			res.Roles[name] = id
		}
		project := func(name string) (string, error) {
			return ensureNamed(ctx, tx, nameProject, res.DomainID, name, func(id string) error {
				p := &projectDoc{ID: id, Name: name, DomainID: res.DomainID, ParentID: res.DomainID,
					Description: "Bootstrap project " + name, Enabled: true, Tags: []string{}}
				return put(ctx, tx, true, kindProject, id, res.DomainID, p)
			})
		}
		user := func(name, project, given string) (id, pw string, err error) {
			created := false
			id, err = ensureNamed(ctx, tx, nameUser, res.DomainID, name, func(id string) error {
				created = true
				pw = given
				if pw == "" {
					pw = generated[name]
				}
				u := &userDoc{ID: id, Name: name, DomainID: res.DomainID, Enabled: true,
					DefaultProjectID: project, PasswordHash: hashes[pw]}
				return put(ctx, tx, true, kindUser, id, res.DomainID, u)
			})
			if err != nil || created || given == "" {
				return id, pw, err
			}
			u, err := get[userDoc](ctx, tx, kindUser, id)
			if err != nil {
				return "", "", err
			}
			if !passwordMatches(u.PasswordHash, given) {
				u.PasswordHash = hashes[given]
				u.RevokedBefore = 0
				if err := put(ctx, tx, false, kindUser, id, u.DomainID, u); err != nil {
					return "", "", err
				}
			}
			return id, given, nil
		}
		grant := func(user, target, role string) error {
			_, err := tx.AddGrant(ctx, store.Grant{ActorID: user, TargetID: target, RoleID: res.Roles[role]})
			return err
		}
		var err error
		if res.AdminProjectID, err = project("admin"); err != nil {
			return err
		}
		if res.DemoProjectID, err = project("demo"); err != nil {
			return err
		}
		if res.AdminUserID, res.AdminPassword, err = user("admin", res.AdminProjectID, opts.AdminPassword); err != nil {
			return err
		}
		if res.DemoUserID, res.DemoPassword, err = user("demo", res.DemoProjectID, opts.DemoPassword); err != nil {
			return err
		}
		if res.ReaderUserID, res.ReaderPassword, err = user("reader", res.DemoProjectID, opts.ReaderPassword); err != nil {
			return err
		}
		for _, g := range []struct{ user, target, role string }{
			{res.AdminUserID, res.AdminProjectID, "admin"},
			{res.AdminUserID, systemID, "admin"},
			{res.DemoUserID, res.DemoProjectID, "member"},
			{res.ReaderUserID, res.DemoProjectID, "reader"},
		} {
			if err := grant(g.user, g.target, g.role); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return res, nil
}

// ensureNamed returns the id holding a name, making the record with
// create when there is none.
func ensureNamed(ctx context.Context, tx store.Tx, kind, scope, name string, create func(id string) error) (string, error) {
	id, err := tx.NameID(ctx, kind, scope, name)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	id = newID()
	if err := create(id); err != nil {
		return "", err
	}
	return id, claimName(ctx, tx, kind, scope, name, id, strings.TrimPrefix(kind, "identity_"))
}

// ensureSystem makes the record system role assignments target.
func ensureSystem(ctx context.Context, tx store.Tx) error {
	if _, err := tx.Get(ctx, kindSystem, systemID); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return put(ctx, tx, true, kindSystem, systemID, "", map[string]bool{"all": true})
}

func randomPassword() string {
	return rand.Text()[:20]
}

// CloudsYAML is a clouds.yaml for the openstack CLI with clouds
// muon-admin, muon-demo and muon-reader; identityURL is the auth URL
// ("http://127.0.0.1:5000/v3"). A user whose password res does not know
// is left out.
func CloudsYAML(identityURL string, res *BootstrapResult) string {
	var b strings.Builder
	b.WriteString("# Written by muon. Use: export OS_CLOUD=muon-admin\nclouds:\n")
	for _, c := range []struct{ cloud, user, password, project string }{
		{"muon-admin", "admin", res.AdminPassword, "admin"},
		{"muon-demo", "demo", res.DemoPassword, "demo"},
		{"muon-reader", "reader", res.ReaderPassword, "demo"},
	} {
		if c.password == "" {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n    auth:\n", c.cloud)
		for _, kv := range [][2]string{
			{"auth_url", identityURL}, {"username", c.user}, {"password", c.password},
			{"project_name", c.project}, {"user_domain_name", res.DomainName},
			{"project_domain_name", res.DomainName},
		} {
			fmt.Fprintf(&b, "      %s: %s\n", kv[0], yamlString(kv[1]))
		}
		fmt.Fprintf(&b, "    region_name: RegionOne\n    identity_api_version: 3\n    interface: public\n")
	}
	return b.String()
}

// yamlString quotes s: a JSON string is a YAML double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
