package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	"github.com/strata-dev/strata/internal/gitops/apply"
	"github.com/strata-dev/strata/internal/kit/patch"
)

// TestInventoryWritesRefuseAStaleRead makes the inventory writes of a
// reconcile that read the Sync before someone else wrote it (a cache that
// lags behind) and checks that they are refused with a conflict, leaving
// the newer inventory as it was; from a fresh read they go through.
func TestInventoryWritesRefuseAStaleRead(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	// Suspended: the manager adds its finalizer and leaves the status alone.
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) { s.Spec.Suspend = true })
	eventually(t, 30*time.Second, "finalizer", func() (bool, string) {
		return controllerutil.ContainsFinalizer(getSync(t, ns, "app"), Finalizer), "no finalizer yet"
	})
	entry := func(name string) apply.Entry {
		return apply.Entry{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: name}
	}
	r := &SyncReconciler{client: env.Client, log: logr.Discard()}
	cases := map[string]struct {
		stale bool
		write func(sc *syncScope, mine string) error
	}{
		"final write from a stale read": {stale: true, write: func(sc *syncScope, mine string) error {
			sc.sync.Status.Inventory = toInventory([]apply.Entry{entry(mine)})
			return r.writeStatus(ctx, sc)
		}},
		"record before apply from a stale read": {stale: true, write: func(sc *syncScope, mine string) error {
			return r.recordInventory(ctx, sc, "main@sha1:0", []apply.Entry{entry(mine)})
		}},
		"final write from a fresh read": {write: func(sc *syncScope, mine string) error {
			sc.sync.Status.Inventory = toInventory([]apply.Entry{entry(mine)})
			return r.writeStatus(ctx, sc)
		}},
		"record before apply from a fresh read": {write: func(sc *syncScope, mine string) error {
			return r.recordInventory(ctx, sc, "main@sha1:0", []apply.Entry{entry(mine)})
		}},
	}
	i := 0
	for name, tc := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			read := getSync(t, ns, "app")
			newer := read.DeepCopy()
			// A different inventory each time, so the update is a write.
			newerName := fmt.Sprintf("newer-%d", i)
			newer.Status.Inventory = toInventory([]apply.Entry{entry(newerName)})
			if err := env.Client.Status().Update(ctx, newer); err != nil {
				t.Fatal(err)
			}
			if !tc.stale {
				read = newer.DeepCopy()
			}
			readInventory := read.DeepCopy().Status.Inventory
			sc := &syncScope{sync: read, log: logr.Discard(), status: patch.NewHelper(env.Client, read)}
			// An inventory different from both, so the write carries it.
			mine := fmt.Sprintf("mine-%d", i)
			err := tc.write(sc, mine)
			got := &gitopsv1.Sync{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, got); err != nil {
				t.Fatal(err)
			}
			inv := got.Status.Inventory
			if tc.stale {
				if !apierrors.IsConflict(err) {
					t.Fatalf("write from a stale read: error %v, want a conflict", err)
				}
				if len(inv) != 1 || inv[0].Name != newerName {
					t.Errorf("inventory after a refused write = %+v, want the newer one", inv)
				}
				if strings.HasPrefix(name, "record") && (sc.stale == nil || !equality.Semantic.DeepEqual(sc.sync.Status.Inventory, readInventory)) {
					t.Errorf("after a refused record: stale = %v, inventory in memory = %+v; want the reconcile to start again with the inventory as read", sc.stale, sc.sync.Status.Inventory)
				}
				return
			}
			if err != nil || sc.stale != nil {
				t.Fatalf("write from a fresh read: %v (stale %v)", err, sc.stale)
			}
			if len(inv) != 1 || inv[0].Name != mine {
				t.Errorf("inventory = %+v, want the written one", inv)
			}
		})
	}
}

// TestVerdictWriteRefusesAStaleRead: a Stage reads a Sync's verification
// verdict, so a reconcile that read the Sync before its verification moved
// on must not write over it. A merge patch from the stale read would send
// only the fields that changed from it and leave the newer ones: here the
// phase of the newer run (Running) beside a lastVerifiedRevision claiming
// its success, the mixed state a Stage took for a verified revision.
func TestVerdictWriteRefusesAStaleRead(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	createSync(t, ns, "app", "src", "app", func(s *gitopsv1.Sync) { s.Spec.Suspend = true })
	eventually(t, 30*time.Second, "finalizer", func() (bool, string) {
		return controllerutil.ContainsFinalizer(getSync(t, ns, "app"), Finalizer), "no finalizer yet"
	})
	old := getSync(t, ns, "app")
	old.Status.LastVerifiedRevision = "main@sha1:c0"
	old.Status.Verification = &gitopsv1.VerificationStatus{Revision: "main@sha1:c0", RunName: "app-verify-c0", Phase: "Successful"}
	if err := env.Client.Status().Update(ctx, old); err != nil {
		t.Fatal(err)
	}
	stale := getSync(t, ns, "app")
	newer := stale.DeepCopy()
	newer.Status.Verification = &gitopsv1.VerificationStatus{Revision: "main@sha1:c1", RunName: "app-verify-c1", Phase: "Running"}
	if err := env.Client.Status().Update(ctx, newer); err != nil {
		t.Fatal(err)
	}

	r := &SyncReconciler{client: env.Client, log: logr.Discard()}
	sc := &syncScope{sync: stale, log: logr.Discard(), status: patch.NewHelper(env.Client, stale)}
	stale.Status.Verification = &gitopsv1.VerificationStatus{Revision: "main@sha1:c1", RunName: "app-verify-c1", Phase: "Successful"}
	stale.Status.LastVerifiedRevision = "main@sha1:c1"
	if err := r.writeStatus(ctx, sc); !apierrors.IsConflict(err) {
		t.Fatalf("verdict written from a stale read: error %v, want a conflict", err)
	}
	got := getSync(t, ns, "app").Status
	if got.LastVerifiedRevision != "main@sha1:c0" || got.Verification == nil || got.Verification.Phase != "Running" {
		t.Errorf("after the refused write: lastVerifiedRevision %q, verification %+v; want c0 and c1 still Running", got.LastVerifiedRevision, got.Verification)
	}
}
