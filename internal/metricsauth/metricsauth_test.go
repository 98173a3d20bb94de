/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package metricsauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/softfactory/release-operator/internal/testenv"
)

// countingTransport counts the requests the filter sends to the API server, so that the
// test sees the caches work.
type countingTransport struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return c.next.RoundTrip(req)
}

// TestAgainstAPIServer runs the filter against a real kube-apiserver (envtest). envtest
// starts it with --authorization-mode=RBAC and with a service account issuer and signing
// key (--service-account-issuer, --service-account-key-file,
// --service-account-signing-key-file), so tokens from the TokenRequest API are
// authenticated as they are in a cluster; the test checks that before relying on it.
func TestAgainstAPIServer(t *testing.T) {
	cfg := testenv.Start(t)
	ctx := t.Context()
	admin := kubernetes.NewForConfigOrDie(cfg)

	// The scraper: a ServiceAccount and a token for it, with no RBAC yet.
	const ns, sa = "default", "scraper"
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tokenReq, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tokenReq.Status.Token
	tr, err := admin.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const username = "system:serviceaccount:" + ns + ":" + sa
	if !tr.Status.Authenticated || tr.Status.User.Username != username {
		t.Fatalf("envtest's API server does not authenticate ServiceAccount tokens: %+v", tr.Status)
	}

	var ran atomic.Bool
	metrics := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ran.Store(true)
		if req.Header.Get("Authorization") != "" {
			t.Error("the wrapped handler sees the bearer token")
		}
		_, _ = io.WriteString(w, "metrics\n")
	})
	// newServer serves metrics behind a new filter (with empty caches) on loopback
	// (httptest listens on 127.0.0.1).
	newServer := func() (*httptest.Server, *countingTransport) {
		t.Helper()
		httpClient, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		counter := &countingTransport{next: httpClient.Transport}
		httpClient.Transport = counter
		filter, err := WithTokenReviewAndSubjectAccessReview(cfg, httpClient)
		if err != nil {
			t.Fatal(err)
		}
		h, err := filter(testr.NewWithOptions(t, testr.Options{Verbosity: 4}), metrics)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv, counter
	}
	get := func(srv *httptest.Server, method, path, authorization string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(srv *httptest.Server, counter *countingTransport, method, path, authorization string, wantCode int, wantCalls int32) {
		t.Helper()
		before := counter.calls.Load()
		if code := get(srv, method, path, authorization); code != wantCode {
			t.Errorf("%s %s with %.20q: got %d, want %d", method, path, authorization, code, wantCode)
		}
		if calls := counter.calls.Load() - before; calls != wantCalls {
			t.Errorf("%s %s with %.20q: %d API calls, want %d", method, path, authorization, calls, wantCalls)
		}
	}

	srv, counter := newServer()
	expect(srv, counter, http.MethodGet, "/metrics", "", http.StatusUnauthorized, 0)
	expect(srv, counter, http.MethodGet, "/metrics", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, 0)
	expect(srv, counter, http.MethodGet, "/metrics", "Bearer garbage", http.StatusUnauthorized, 1)
	expect(srv, counter, http.MethodGet, "/metrics", "Bearer garbage", http.StatusUnauthorized, 0) // cached
	// Authenticated, not authorized: a TokenReview and a SubjectAccessReview, then neither.
	expect(srv, counter, http.MethodGet, "/metrics", "Bearer "+token, http.StatusForbidden, 2)
	expect(srv, counter, http.MethodGet, "/metrics", "bearer "+token, http.StatusForbidden, 0)
	if ran.Load() {
		t.Fatal("the wrapped handler ran for a request that was not authorized")
	}

	// The rule of config/rbac/metrics_reader_role.yaml, bound to the scraper.
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The denial stays cached for up to denyTTL (30 s), as in controller-runtime.
	expect(srv, counter, http.MethodGet, "/metrics", "Bearer "+token, http.StatusForbidden, 0)

	// A new filter asks again. The API server's RBAC authorizer learns of the binding
	// through a watch, so the first tries may still be denied.
	if err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			srv, counter = newServer()
			return get(srv, http.MethodGet, "/metrics", "Bearer "+token) == http.StatusOK, nil
		}); err != nil {
		t.Fatal("still forbidden 30 s after the ClusterRoleBinding")
	}
	if !ran.Load() {
		t.Fatal("200 without the wrapped handler running")
	}
	expect(srv, counter, http.MethodGet, "/metrics", "Bearer "+token, http.StatusOK, 0) // both answers cached
	// The verb is the lower-cased method, the path the request's: neither is granted.
	expect(srv, counter, http.MethodPost, "/metrics", "Bearer "+token, http.StatusForbidden, 1)
	expect(srv, counter, http.MethodGet, "/other", "Bearer "+token, http.StatusForbidden, 1)

	// The API server cannot be asked (nothing listens on loopback port 1): 500, not a
	// verdict on the client.
	down := rest.CopyConfig(cfg)
	down.Host = "https://127.0.0.1:1"
	downClient, err := rest.HTTPClientFor(down)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := WithTokenReviewAndSubjectAccessReview(down, downClient)
	if err != nil {
		t.Fatal(err)
	}
	h, err := filter(testr.NewWithOptions(t, testr.Options{Verbosity: 4}), metrics)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("API server down: got %d, want 500", rec.Code)
	}
}
