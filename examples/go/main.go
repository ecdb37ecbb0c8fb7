// A Go app behind the Latch edge: net/http and the standard library's crypto/ed25519, no
// modules to fetch. Copy it and change the handlers. Configuration (environment):
//
//	PORT                      where this app listens (default 3000)
//	LATCH_EDGE_URL            the edge in front of it: its keys are at /.well-known/latch-assertion-jwks.json
//	LATCH_ASSERTION_AUDIENCE  the assertion's aud: the edge's ASSERTION_AUDIENCE (by default its UPSTREAM_URL)
//	LATCH_ASSERTION_ISSUER    the assertion's iss: the edge's ASSERTION_ISSUER (default latch-edge)
//	LATCH_ORIGIN_URL          the origin's API, for session info
//	LATCH_API_KEY             the origin's API key
package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

var (
	edgeURL   = env("LATCH_EDGE_URL", "http://127.0.0.1:8787")
	originURL = env("LATCH_ORIGIN_URL", "http://127.0.0.1:3567")
	apiKey    = os.Getenv("LATCH_API_KEY")
	issuer    = env("LATCH_ASSERTION_ISSUER", "latch-edge")
	audience  = os.Getenv("LATCH_ASSERTION_AUDIENCE")
)

// Claims of the edge's assertion. UID is the user id with its JSON type (string or number).
type Claims struct {
	Iss  string          `json:"iss"`
	Aud  string          `json:"aud"`
	Sub  string          `json:"sub"`
	UID  json.RawMessage `json:"uid"`
	Sid  string          `json:"sid"`
	Pld  json.RawMessage `json:"pld,omitempty"`
	Csrf string          `json:"csrf"`
	Iat  int64           `json:"iat"`
	Nbf  int64           `json:"nbf"`
	Exp  int64           `json:"exp"`
}

// The edge's public keys by kid, fetched once and again on an unknown kid (at most every 10 s).
var keys = struct {
	sync.Mutex
	byKid   map[string]ed25519.PublicKey
	fetched time.Time
}{byKid: map[string]ed25519.PublicKey{}}

func publicKey(kid string) (ed25519.PublicKey, error) {
	keys.Lock()
	defer keys.Unlock()
	if key, ok := keys.byKid[kid]; ok {
		return key, nil
	}
	if time.Since(keys.fetched) < 10*time.Second {
		return nil, errors.New("unknown key")
	}
	keys.fetched = time.Now()
	res, err := http.Get(edgeURL + "/.well-known/latch-assertion-jwks.json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var jwks struct {
		Keys []struct{ Kty, Crv, Kid, X string } `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil {
		return nil, err
	}
	for _, jwk := range jwks.Keys {
		x, err := base64.RawURLEncoding.DecodeString(jwk.X)
		if jwk.Kty == "OKP" && jwk.Crv == "Ed25519" && err == nil && len(x) == ed25519.PublicKeySize {
			keys.byKid[jwk.Kid] = ed25519.PublicKey(x)
		}
	}
	if key, ok := keys.byKid[kid]; ok {
		return key, nil
	}
	return nil, errors.New("unknown key")
}

// identity checks the edge's signed assertion: never trust the plain x-latch-user-id header.
func identity(r *http.Request) (*Claims, error) {
	parts := strings.Split(r.Header.Get("x-latch-assertion"), ".")
	if len(parts) != 3 {
		return nil, errors.New("no assertion: the request did not come through the edge")
	}
	headerJSON, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	signature, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errors.New("malformed assertion")
	}
	var header struct{ Alg, Kid string }
	if json.Unmarshal(headerJSON, &header) != nil || header.Alg != "EdDSA" {
		return nil, errors.New("the assertion must be EdDSA")
	}
	key, err := publicKey(header.Kid)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(key, []byte(parts[0]+"."+parts[1]), signature) {
		return nil, errors.New("bad signature")
	}
	var claims Claims
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("malformed claims")
	}
	now, leeway := time.Now().Unix(), int64(5)
	switch {
	case claims.Exp+leeway < now || claims.Nbf-leeway > now:
		return nil, errors.New("expired or not yet valid")
	case claims.Exp-claims.Iat > 60:
		return nil, errors.New("lives too long")
	case claims.Iss != issuer:
		return nil, errors.New("wrong issuer")
	case claims.Aud != audience:
		return nil, errors.New("wrong audience")
	}
	return &claims, nil
}

// csrfPassed is the seed's getSession(req, res, true) for state-changing calls.
func csrfPassed(c *Claims) bool {
	return c.Csrf == "passed" || c.Csrf == "same_origin" || c.Csrf == "not_applicable"
}

func send(w http.ResponseWriter, status int, body interface{}) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func sessionInfo(w http.ResponseWriter, handle, method string, body interface{}) {
	var reader io.Reader
	if body != nil {
		encoded, _ := json.Marshal(body)
		reader = bytes.NewReader(encoded)
	}
	req, _ := http.NewRequest(method, originURL+"/v1/sessions/"+url.PathEscape(handle)+"/info", reader)
	req.Header.Set("authorization", "Bearer "+apiKey)
	req.Header.Set("content-type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		send(w, 500, map[string]string{"error": "GENERAL_ERROR", "message": "the origin is unreachable"})
		return
	}
	defer res.Body.Close()
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

// asciiJSON writes JSON with every non-ASCII character as a \u escape: header values must be ASCII.
func asciiJSON(value interface{}) string {
	encoded, _ := json.Marshal(value)
	var out strings.Builder
	for _, r := range string(encoded) {
		if r < 0x80 {
			out.WriteRune(r)
		} else if r > 0xffff {
			r -= 0x10000
			fmt.Fprintf(&out, "\\u%04x\\u%04x", 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		} else {
			fmt.Fprintf(&out, "\\u%04x", r)
		}
	}
	return out.String()
}

func main() {
	if audience == "" {
		// Without an audience, an assertion meant for another app behind the same edge would pass.
		log.Fatal("set LATCH_ASSERTION_AUDIENCE: this app's ASSERTION_AUDIENCE at the edge")
	}
	http.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		// Authenticate the person first (a password, a magic link...); then tell the edge.
		user := r.URL.Query().Get("user")
		var userID interface{} = user
		if r.URL.Query().Get("numeric") == "1" {
			n, err := strconv.ParseInt(user, 10, 64)
			if err != nil {
				send(w, 400, map[string]string{"error": "BAD_REQUEST", "message": "not a number"})
				return
			}
			userID = n
		}
		login := map[string]interface{}{
			"user_id":      userID,
			"jwt_payload":  map[string]string{"name": user},
			"session_info": map[string]int{"visits": 0},
		}
		w.Header().Set("x-latch-login", asciiJSON(login))
		send(w, 200, map[string]string{"status": "OK"})
	})
	withIdentity := func(handler func(http.ResponseWriter, *http.Request, *Claims)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			claims, err := identity(r)
			if err != nil {
				send(w, 401, map[string]string{"error": "UNAUTHORISED", "message": err.Error()})
				return
			}
			handler(w, r, claims)
		}
	}
	http.HandleFunc("/me", withIdentity(func(w http.ResponseWriter, r *http.Request, c *Claims) {
		payload := c.Pld
		if payload == nil {
			payload = json.RawMessage("null")
		}
		send(w, 200, map[string]interface{}{
			"user_id": c.UID, "sub": c.Sub, "session_handle": c.Sid, "jwt_payload": payload, "csrf": c.Csrf,
		})
	}))
	http.HandleFunc("/info", withIdentity(func(w http.ResponseWriter, r *http.Request, c *Claims) {
		if r.Method != http.MethodPost {
			sessionInfo(w, c.Sid, http.MethodGet, nil)
			return
		}
		if !csrfPassed(c) {
			send(w, 403, map[string]string{"error": "TRY_REFRESH_TOKEN", "message": "anti-csrf check failed"})
			return
		}
		// Bounded, and only a well-formed body is written: bad input changes nothing.
		raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
		if err == nil && len(raw) > 64<<10 {
			send(w, 413, map[string]string{"error": "BAD_REQUEST", "message": "the body is over 65536 bytes"})
			return
		}
		var body map[string]json.RawMessage
		if err != nil || json.Unmarshal(raw, &body) != nil {
			send(w, 400, map[string]string{"error": "BAD_REQUEST", "message": "the body must be JSON"})
			return
		}
		info, present := body["session_info"]
		if !present {
			send(w, 400, map[string]string{"error": "BAD_REQUEST", "message": `send {"session_info": ...}`})
			return
		}
		sessionInfo(w, c.Sid, http.MethodPut, map[string]json.RawMessage{"session_info": info})
	}))
	http.HandleFunc("/logout", withIdentity(func(w http.ResponseWriter, r *http.Request, c *Claims) {
		w.Header().Set("x-latch-logout", "1")
		send(w, 200, map[string]string{"status": "OK"})
	}))
	address := "127.0.0.1:" + env("PORT", "3000")
	log.Printf("go example listening on %s", address)
	log.Fatal(http.ListenAndServe(address, nil))
}
