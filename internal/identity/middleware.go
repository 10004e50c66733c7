package identity

import (
	"errors"
	"fmt"
	"net/http"

	"muon/internal/auth"
)

// Middleware authenticates Networking API requests as keystonemiddleware's
// auth_token does: X-Auth-Token is validated and the caller's credentials
// go into the request context. A missing or invalid token answers 401
// with `WWW-Authenticate: Keystone uri="<identityURL>"`; a validator that
// cannot tell (identity unreachable) answers 503; the validator logs why.
func Middleware(v Validator, identityURL string) func(http.Handler) http.Handler {
	challenge := fmt.Sprintf("Keystone uri=%q", identityURL)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok := r.Header.Get("X-Auth-Token")
			if tok == "" {
				tok = r.Header.Get("X-Storage-Token")
			}
			if tok == "" {
				w.Header().Set("WWW-Authenticate", challenge)
				writeJSON(w, http.StatusUnauthorized, keystoneError(http.StatusUnauthorized, authRequired))
				return
			}
			c, err := v.Validate(r.Context(), tok)
			switch {
			case errors.Is(err, ErrInvalidToken):
				w.Header().Set("WWW-Authenticate", challenge)
				writeJSON(w, http.StatusUnauthorized, keystoneError(http.StatusUnauthorized, authRequired))
				return
			case err != nil:
				writeJSON(w, http.StatusServiceUnavailable, keystoneError(http.StatusServiceUnavailable,
					"The service is temporarily unavailable: the identity service cannot validate tokens."))
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), c)))
		})
	}
}
