package controller

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilwait "k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

// The reconcilers under test read as the operator does: through an informer cache built
// from cacheshape.Options and indexed by cacheshape.IndexFields, so they see the trimmed,
// label-selected objects the manager's cache holds.
//
// An informer delivers a write some milliseconds after the API server took it. The
// operator copes with that (its passes are woken by the very watch events that fill the
// cache), but a test that calls Reconcile right after a write must not race the watch:
// every write made through k8sClient or a harness's client (dry runs aside) returns only
// once the cache holds it.

// startCache starts the suite's informer cache, shaped and indexed as the manager's.
func startCache(ctx context.Context) (cache.Cache, error) {
	opts := cacheshape.Options()
	opts.Scheme = scheme
	informers, err := cache.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := cacheshape.IndexFields(ctx, informers); err != nil {
		return nil, err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the cache did not sync")
	}
	return informers, nil
}

// newCachedClient reads through the suite's cache, with the manager's client options,
// and writes to the API server, returning once the cache holds each write.
func newCachedClient() client.Client {
	opts := cacheshape.ClientOptions()
	opts.Scheme = scheme
	opts.Cache.Reader = informers
	c, err := client.New(cfg, opts)
	if err != nil {
		panic(err)
	}
	return &cacheSyncingClient{Client: c}
}

// cacheSyncingClient waits, after each write, until the suite's cache holds it.
type cacheSyncingClient struct {
	client.Client
}

func (c *cacheSyncingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.Client.Create(ctx, obj, opts...); err != nil || len((&client.CreateOptions{}).ApplyOptions(opts).DryRun) > 0 {
		return err
	}
	return awaitCache(ctx, obj, false)
}

func (c *cacheSyncingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	if err := c.Client.Update(ctx, obj, opts...); err != nil || len((&client.UpdateOptions{}).ApplyOptions(opts).DryRun) > 0 {
		return err
	}
	return awaitCache(ctx, obj, false)
}

func (c *cacheSyncingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.Client.Patch(ctx, obj, patch, opts...); err != nil || len((&client.PatchOptions{}).ApplyOptions(opts).DryRun) > 0 {
		return err
	}
	return awaitCache(ctx, obj, false)
}

func (c *cacheSyncingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if err := c.Client.Delete(ctx, obj, opts...); err != nil || len((&client.DeleteOptions{}).ApplyOptions(opts).DryRun) > 0 {
		return err
	}
	return awaitCache(ctx, obj, true)
}

func (c *cacheSyncingClient) Status() client.SubResourceWriter {
	return &cacheSyncingStatusWriter{SubResourceWriter: c.Client.Status()}
}

type cacheSyncingStatusWriter struct {
	client.SubResourceWriter
}

func (w *cacheSyncingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if err := w.SubResourceWriter.Update(ctx, obj, opts...); err != nil {
		return err
	}
	return awaitCache(ctx, obj, false)
}

func (w *cacheSyncingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := w.SubResourceWriter.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	return awaitCache(ctx, obj, false)
}

// cachedKinds are the kinds the reconciler reads through the cache, each with the label
// and field selectors the cache holds them by (nil: every object of the kind).
func cachedKinds() map[schema.GroupVersionKind]cache.ByObject {
	kinds := map[schema.GroupVersionKind]cache.ByObject{
		deployv1alpha1.GroupVersion.WithKind("SoftFactoryRelease"): {},
	}
	for obj, by := range cacheshape.Options().ByObject {
		gvk, err := apiutil.GVKForObject(obj, scheme)
		if err != nil {
			panic(err)
		}
		kinds[gvk] = by
	}
	return kinds
}

// cacheHolds says whether the cache selects obj as written: its labels, and for a pod
// the one field the cache selects pods by (its phase).
func cacheHolds(by cache.ByObject, obj client.Object) bool {
	if by.Label != nil && !by.Label.Matches(labels.Set(obj.GetLabels())) {
		return false
	}
	if by.Field == nil {
		return true
	}
	set := fields.Set{}
	if p, ok := obj.(*corev1.Pod); ok {
		set["status.phase"] = string(p.Status.Phase)
	}
	return by.Field.Matches(set)
}

// awaitCache returns once the cache holds obj as written (at its resourceVersion or
// later), no longer holds it (it stopped matching the cache's selector), or, after a
// delete, holds it no more or only as being deleted.
func awaitCache(ctx context.Context, obj client.Object, deleted bool) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return err
	}
	by, cached := cachedKinds()[gvk]
	if !cached {
		return nil
	}
	held := deleted || cacheHolds(by, obj)
	written := obj.GetResourceVersion()
	key := client.ObjectKeyFromObject(obj)
	var last string
	err = utilwait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		got := obj.DeepCopyObject().(client.Object)
		err := informers.Get(ctx, key, got)
		last = fmt.Sprintf("error %v, resourceVersion %q", err, got.GetResourceVersion())
		switch {
		case apierrors.IsNotFound(err):
			return !held || deleted, nil
		case err != nil:
			return false, err
		case deleted:
			return !got.GetDeletionTimestamp().IsZero(), nil
		}
		return held && resourceVersionAtLeast(got.GetResourceVersion(), written), nil
	})
	if err != nil {
		return fmt.Errorf("the cache did not catch up with the write of %s %s (resourceVersion %s; last read: %s): %w", gvk.Kind, key, written, last, err)
	}
	return nil
}

// resourceVersionAtLeast compares resource versions as etcd (the only store envtest
// runs) issues them: increasing integers.
func resourceVersionAtLeast(have, want string) bool {
	h, errH := strconv.ParseUint(have, 10, 64)
	w, errW := strconv.ParseUint(want, 10, 64)
	if errH != nil || errW != nil {
		return have == want
	}
	return h >= w
}
