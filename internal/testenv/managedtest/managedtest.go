package managedtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/conditions"
	"github.com/strata-dev/strata/internal/scheme"
)

// StartManager runs a manager with setup until the test ends.
func StartManager(t testing.TB, cfg *rest.Config, setup func(ctrl.Manager) error) {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme.New(),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// Eventually polls f every 100ms until it returns nil, failing the test with
// f's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Object is a Strata kind with conditions.
type Object interface {
	client.Object
	conditions.Setter
}

// WaitCondition waits until obj (fetched by name) has the condition typ with
// status and, if not empty, reason; it leaves the last fetched state in obj.
func WaitCondition(t testing.TB, c client.Client, obj Object, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("%s %s=%s %s", obj.GetName(), typ, status, reason), func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		cond := conditions.Get(obj, typ)
		if cond == nil {
			return fmt.Errorf("no %s condition", typ)
		}
		if cond.Status != status || (reason != "" && cond.Reason != reason) {
			return fmt.Errorf("%s is %s (%s): %s", typ, cond.Status, cond.Reason, cond.Message)
		}
		return nil
	})
}

// WaitGone waits until obj no longer exists.
func WaitGone(t testing.TB, c client.Client, obj client.Object, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, obj.GetName()+" deleted", func() error {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (err %v)", err)
	})
}

// EventReasons returns the reasons of the events about the named object.
func EventReasons(t testing.TB, c client.Client, name string) []string {
	t.Helper()
	l := &corev1.EventList{}
	if err := c.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// HasEvent waits until an event with reason exists for the named object.
func HasEvent(t testing.TB, c client.Client, name, reason string) {
	t.Helper()
	Eventually(t, 10*time.Second, "event "+reason+" for "+name, func() error {
		ev := EventReasons(t, c, name)
		for _, r := range ev {
			if r == reason {
				return nil
			}
		}
		return fmt.Errorf("events: %s", strings.Join(ev, ","))
	})
}

// Suffix returns a short random suffix for unique names.
func Suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PostgresURL is the PostgreSQL server tests use.
func PostgresURL() string {
	if u := os.Getenv("STRATA_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// MySQLDSN is the MariaDB/MySQL server tests use (go-sql-driver format).
func MySQLDSN() string {
	if d := os.Getenv("STRATA_TEST_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/"
}
