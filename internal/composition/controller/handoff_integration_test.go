package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/strata-dev/strata/internal/composition/controller"
)

// TestClaimReadyBesideItsXRStatusWrite: when a composite resource becomes
// Ready, its claim's status write does not wait for the XR's: the test holds
// the XR's status write that says Ready, and the claim becomes Ready while it
// is held. Once the write goes through, both are Ready and the claim carries
// the XR's status fields. A claim in another namespace that names the XR
// may neither create it before its claim does nor get anything of the
// handed-off status: it stays refused.
func TestClaimReadyBesideItsXRStatusWrite(t *testing.T) {
	ctx := context.Background()
	apply(t, xrdYAML)
	apply(t, compYAML)
	waitValid(t, "composition valid", "app", "True")
	for _, ns := range []string{"team-h", "team-hx"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1ObjectMeta(ns)}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	xrName := controller.XRName("team-h", "held")
	// Another tenant's claim names the XR the claim team-h/held will have,
	// before that claim exists: it may not create it under that name.
	spy := `{apiVersion: test.strata.dev/v1alpha1, kind: App, metadata: {name: spy, namespace: team-hx, labels: {try: "%d"}}, spec: {message: mine, resourceRef: {apiVersion: test.strata.dev/v1alpha1, kind: XApp, name: %s}}}`
	apply(t, fmt.Sprintf(spy, 1, xrName))
	eventually(t, 20*time.Second, "the other tenant's claim may not create the XR", func() error {
		c, err := get(claimGVK, "team-hx", "spy")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Synced"); s != "False" || r != "ClaimNotAllowed" || !strings.Contains(m, "does not exist") {
			return fmt.Errorf("Synced=%s %s %q", s, r, m)
		}
		return nil
	})
	if _, err := get(xrGVK, "", xrName); !apierrors.IsNotFound(err) {
		t.Fatalf("the XR %s exists before its claim: %v", xrName, err)
	}
	apply(t, `{apiVersion: test.strata.dev/v1alpha1, kind: App, metadata: {name: held, namespace: team-h}, spec: {message: hi}}`)
	eventually(t, 30*time.Second, "claim waits for db", func() error {
		c, err := get(claimGVK, "team-h", "held")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "False" || !strings.Contains(m, "db (not ready)") {
			return fmt.Errorf("Ready=%s %s %q", s, r, m)
		}
		return nil
	})

	// Hold the XR's status write that says Ready until the test lets it go.
	release := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	var held atomic.Bool
	hook.Set(func(req *http.Request) {
		if req.Method != http.MethodPatch || !strings.HasSuffix(req.URL.Path, "/xapps/"+xrName+"/status") || req.Body == nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if !saysReady(body) {
			return
		}
		held.Store(true)
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	})
	t.Cleanup(func() { hook.Set(nil) })

	apply(t, fmt.Sprintf("{apiVersion: v1, kind: ConfigMap, metadata: {name: %s-db, namespace: team-h}, data: {ready: 'yes'}}", xrName))
	eventually(t, 20*time.Second, "claim Ready while its XR's status write is held", func() error {
		c, err := get(claimGVK, "team-h", "held")
		if err != nil {
			return err
		}
		if s, r, m := condition(c, "Ready"); s != "True" {
			return fmt.Errorf("claim Ready=%s %s %q (XR status write held: %v)", s, r, m, held.Load())
		}
		return nil
	})
	if !held.Load() {
		t.Fatal("the XR's status write saying Ready was never seen (the hook did not hold it)")
	}
	xr, err := get(xrGVK, "", xrName)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := condition(xr, "Ready"); s == "True" {
		t.Fatal("the XR is Ready already: its status write was not held")
	}
	// The other tenant's claim tries again while the XR's status is handed
	// off.
	apply(t, fmt.Sprintf(spy, 2, xrName))
	eventually(t, 20*time.Second, "the other tenant's claim refused", func() error {
		spy, err := get(claimGVK, "team-hx", "spy")
		if err != nil {
			return err
		}
		if s, _, m := condition(spy, "Synced"); s != "False" || !strings.Contains(m, "is bound to claim team-h/held") {
			return fmt.Errorf("Synced=%s %q", s, m)
		}
		if s, _, m := condition(spy, "Ready"); s == "True" {
			return fmt.Errorf("the other tenant's claim is Ready: %q", m)
		}
		if st, _ := spy.Object["status"].(map[string]any); st["url"] != nil {
			return fmt.Errorf("the other tenant's claim got the XR's status.url %v", st["url"])
		}
		return nil
	})
	letGo()
	eventually(t, 30*time.Second, "XR Ready once its write goes through", func() error {
		xr, err := get(xrGVK, "", xrName)
		if err != nil {
			return err
		}
		if s, r, m := condition(xr, "Ready"); s != "True" {
			return fmt.Errorf("XR Ready=%s %s %q", s, r, m)
		}
		return nil
	})
	c, err := get(claimGVK, "team-h", "held")
	if err != nil {
		t.Fatal(err)
	}
	if s, r, m := condition(c, "Ready"); s != "True" {
		t.Errorf("claim Ready=%s %s %q after its XR's write, want True", s, r, m)
	}
	if url := c.Object["status"].(map[string]any)["url"]; url != "http://"+xrName+"-web" {
		t.Errorf("claim status.url = %v, want the XR's http://%s-web", url, xrName)
	}
	deleteClaimAndWait(t, claimGVK, "team-hx", "spy")
	deleteClaimAndWait(t, claimGVK, "team-h", "held")
}

// saysReady reports whether a status merge patch sets the Ready condition
// True.
func saysReady(body []byte) bool {
	var p struct {
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if json.Unmarshal(body, &p) != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			return true
		}
	}
	return false
}
