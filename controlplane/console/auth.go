package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/erpctl/erpctl/controlplane/operators"
)

// Cookies: the session's, and the one a login form is checked against before there is a session.
const (
	sessionCookie = "erpctl_console"
	loginCookie   = "erpctl_console_login"
)

// session is who makes a request and how: a browser session (cookie) or a script (bearer).
type session struct {
	op     operators.Operator
	secret string // the cookie's secret; "" for a bearer request
}

// bearer reports whether the request came with its credential in a header, which a browser
// never adds by itself: such a request needs no CSRF token.
func (s *session) bearer() bool { return s.secret == "" }

// csrf is the CSRF token of a browser session: derived from its secret, which only the browser
// holding the cookie knows, so that another site's form cannot carry it.
func (s *session) csrf() string {
	if s == nil || s.secret == "" {
		return ""
	}
	h := sha256.Sum256([]byte("erpctl console csrf " + s.secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

type handler func(w http.ResponseWriter, r *http.Request, s *session)

// auth lets through operators only: a bearer operator token, or a session cookie whose POSTs
// carry the session's CSRF token. A browser without a session is sent to the login page.
func (c *Console) auth(next handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.authenticate(r)
		if err != nil {
			c.log.Error("console authentication failed", "err", err)
			c.fail(w, r, nil, http.StatusServiceUnavailable, "The console cannot check credentials now; the daemon's log says why.")
			return
		}
		if s == nil {
			if r.Method == http.MethodGet && !wantsJSON(r) && r.Header.Get("Authorization") == "" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="erpctl console"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": "An operator token is needed (erpctl operator token create NAME); a tenant's token does not open the console."})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.bearer() {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf())) != 1 {
				c.fail(w, r, s, http.StatusForbidden, "This form is out of date or did not come from the console (no valid CSRF token): nothing was changed. Reload the page and try again.")
				return
			}
		}
		next(w, r, s)
	})
}

// authenticate finds the operator of a request: its bearer header when it has one (and then
// only that), else its session cookie. nil when neither is a valid operator credential.
func (c *Console) authenticate(r *http.Request) (*session, error) {
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return nil, nil
		}
		op, ok, err := c.cfg.Operators.Authenticate(ctx, strings.TrimSpace(secret))
		if err != nil || !ok {
			return nil, err
		}
		return &session{op: op}, nil
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	op, ok, err := c.cfg.Operators.Session(ctx, ck.Value)
	if err != nil || !ok {
		return nil, err
	}
	return &session{op: op, secret: ck.Value}, nil
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || c.cfg.SecureCookies})
}

// loginPage serves the login form, or spends the one-time code of a login link and opens a
// session: the link works once, and the code leaves the address bar at once.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if code := r.URL.Query().Get("code"); code != "" {
		op, ok, err := c.cfg.Operators.UseLoginCode(r.Context(), code)
		if err != nil {
			c.log.Error("console login link", "err", err)
			c.loginForm0(w, r, http.StatusServiceUnavailable, "The console cannot check the login link now; the daemon's log says why.")
			return
		}
		if !ok {
			c.loginForm0(w, r, http.StatusUnauthorized, "This login link was used already, has expired, or its token was revoked. Sign in with the operator token, or create another with erpctl operator token create NAME.")
			return
		}
		c.startSession(w, r, op, "/")
		return
	}
	c.loginForm0(w, r, http.StatusOK, "")
}

// loginForm0 renders the login form with a fresh login CSRF token, set also as a cookie: the
// form's POST must carry both, equal (no session exists yet to derive one from).
func (c *Console) loginForm0(w http.ResponseWriter, r *http.Request, status int, msg string) {
	var raw [24]byte
	rand.Read(raw[:])
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	c.setCookie(w, r, loginCookie, tok, 3600)
	c.render(w, r, nil, status, "login", "Sign in", struct {
		CSRF, Next, Error string
	}{tok, safeNext(r.FormValue("next")), msg})
}

// loginForm signs in with an operator token typed into the form.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.loginForm0(w, r, http.StatusForbidden, "The sign-in form was out of date: try again.")
		return
	}
	op, ok, err := c.cfg.Operators.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		c.log.Error("console login", "err", err)
		c.loginForm0(w, r, http.StatusServiceUnavailable, "The console cannot check credentials now; the daemon's log says why.")
		return
	}
	if !ok {
		c.loginForm0(w, r, http.StatusUnauthorized, "That is not a valid operator token. Tenant tokens do not open the console: create an operator token with erpctl operator token create NAME.")
		return
	}
	c.startSession(w, r, op, safeNext(r.PostFormValue("next")))
}

func (c *Console) startSession(w http.ResponseWriter, r *http.Request, op operators.Operator, next string) {
	secret, err := c.cfg.Operators.StartSession(r.Context(), op)
	if err != nil {
		c.log.Error("console session", "err", err)
		c.loginForm0(w, r, http.StatusServiceUnavailable, "The console cannot open a session now; the daemon's log says why.")
		return
	}
	c.log.Info("console sign-in", "operator", op.Name, "token_id", op.TokenID)
	c.setCookie(w, r, loginCookie, "", -1)
	c.setCookie(w, r, sessionCookie, secret, int(operators.SessionTTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.bearer() {
		if err := c.cfg.Operators.EndSession(r.Context(), s.secret); err != nil {
			c.failErr(w, r, s, err)
			return
		}
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on the console: a path of its own, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}
