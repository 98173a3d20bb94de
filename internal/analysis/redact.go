package analysis

import (
	"net/url"
	"regexp"
	"strings"
)

// A Prometheus behind basic auth is often given as https://user:password@host. The
// address goes into check messages, and from there into the release's status, its Events
// and the operator's logs, which far more people can read than the spec: the password
// must never reach them.

// userinfo is the user:password@ part of a URL that does not parse.
var userinfo = regexp.MustCompile(`://[^/?#@]*@`)

// A proxy in front of Prometheus may take its credential in the query instead
// (?token=..., ?api_key=...): a parameter whose name says so is as secret as a password.
var secretParam = regexp.MustCompile(`(?i)token|key|secret|pass|auth|sig|credential`)

// RedactURL is the address as it may be shown: the password and secret query parameters
// replaced by "xxxxx" (as net/url's Redacted does for the password), or, for a URL that
// does not parse, all of its user info and query.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		shown := userinfo.ReplaceAllString(raw, "://xxxxx@")
		if before, _, ok := strings.Cut(shown, "?"); ok {
			shown = before + "?xxxxx"
		}
		return shown
	}
	shown := *u
	shown.RawQuery = redactQuery(u.RawQuery)
	return shown.Redacted()
}

// redactQuery replaces the values of secret parameters, keeping the query's order.
func redactQuery(query string) string {
	if query == "" {
		return ""
	}
	parts := strings.Split(query, "&")
	for i, part := range parts {
		if name, _, ok := strings.Cut(part, "="); ok && secretParam.MatchString(name) {
			parts[i] = name + "=xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// querySecrets are the values of the secret parameters, as written and as decoded.
func querySecrets(raw string) []string {
	_, query, ok := strings.Cut(raw, "?")
	if !ok {
		return nil
	}
	query, _, _ = strings.Cut(query, "#")
	var secrets []string
	for _, part := range strings.Split(query, "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || !secretParam.MatchString(name) || value == "" {
			continue
		}
		secrets = append(secrets, value)
		if decoded, err := url.QueryUnescape(value); err == nil && decoded != value {
			secrets = append(secrets, decoded)
		}
	}
	return secrets
}

// redactIn removes the address's password and secret parameters from text, such as an error that quotes the
// URL (url.Parse quotes it whole; net/http strips the password, but a client library
// may not): the password as written in the URL, and as decoded.
func redactIn(text, raw string) string {
	text = strings.ReplaceAll(text, raw, RedactURL(raw))
	secrets := querySecrets(raw)
	if m := userinfo.FindString(raw); m != "" {
		info := strings.TrimSuffix(strings.TrimPrefix(m, "://"), "@")
		if _, written, ok := strings.Cut(info, ":"); ok {
			secrets = append(secrets, written)
		} else if _, err := url.Parse(raw); err != nil {
			secrets = append(secrets, info) // unparsed: any of it may be the secret
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if password, ok := u.User.Password(); ok {
			secrets = append(secrets, password)
		}
	}
	for _, secret := range secrets {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "xxxxx")
		}
	}
	return text
}
