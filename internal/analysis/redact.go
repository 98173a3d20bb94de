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

// RedactURL is the address as it may be shown: the password replaced by "xxxxx" (as
// net/url's Redacted does), or, for a URL that does not parse, all of its user info.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return userinfo.ReplaceAllString(raw, "://xxxxx@")
	}
	return u.Redacted()
}

// redactIn removes the address's password from text, such as an error that quotes the
// URL (url.Parse quotes it whole; net/http strips the password, but a client library
// may not): the password as written in the URL, and as decoded.
func redactIn(text, raw string) string {
	text = strings.ReplaceAll(text, raw, RedactURL(raw))
	var secrets []string
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
