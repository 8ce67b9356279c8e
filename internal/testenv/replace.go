package testenv

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RequestHook lets a test act between a writer's read and its write: a
// manager or client built on the config Hooked returns sends every request
// through the function set with Set (none by default).
type RequestHook struct {
	f atomic.Pointer[func(*http.Request)]
}

// Set makes f see every request before it is sent; nil stops that.
func (h *RequestHook) Set(f func(*http.Request)) {
	if f == nil {
		h.f.Store(nil)
		return
	}
	h.f.Store(&f)
}

// Hooked returns a copy of cfg whose requests pass through the hook.
func (h *RequestHook) Hooked(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return hookedTransport{h: h, next: rt} }
	return c
}

type hookedTransport struct {
	h    *RequestHook
	next http.RoundTripper
}

func (t hookedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f := t.h.f.Load(); f != nil {
		(*f)(req)
	}
	return t.next.RoundTrip(req)
}

// Verbs ReplaceBefore acts before.
const (
	BeforeApply  = "apply"  // a server-side apply (PATCH)
	BeforeDelete = "delete" // a DELETE
)

// ReplaceBefore sets h to swap obj, once, right before the first request
// of verb (BeforeApply or BeforeDelete) whose URL path ends with pathSuffix
// (".../namespaces/NS/secrets/NAME"): it deletes the object of obj's name
// and creates obj in its place with c. replaced reports whether the swap
// happened.
func ReplaceBefore(t *testing.T, h *RequestHook, c client.Client, verb, pathSuffix string, obj client.Object) (replaced *atomic.Bool) {
	t.Helper()
	replaced = &atomic.Bool{}
	h.Set(func(req *http.Request) {
		match := false
		switch verb {
		case BeforeApply:
			match = req.Method == http.MethodPatch && req.Header.Get("Content-Type") == string(types.ApplyPatchType)
		case BeforeDelete:
			match = req.Method == http.MethodDelete
		}
		if !match || !strings.HasSuffix(req.URL.Path, pathSuffix) || !replaced.CompareAndSwap(false, true) {
			return
		}
		ctx := context.Background()
		if err := c.Delete(ctx, obj.DeepCopyObject().(client.Object)); err != nil {
			t.Errorf("delete %s/%s: %v", obj.GetNamespace(), obj.GetName(), err)
		}
		if err := c.Create(ctx, obj.DeepCopyObject().(client.Object)); err != nil {
			t.Errorf("create the replacement of %s/%s: %v", obj.GetNamespace(), obj.GetName(), err)
		}
	})
	t.Cleanup(func() { h.Set(nil) })
	return replaced
}
