package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gitopsv1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
)

// PathPrefix is where the receiver serves: PathPrefix + "<namespace>/<name>"
// names a GitRepository.
const PathPrefix = "/hook/gitrepository/"

// MaxBody bounds a push event's size; a larger body gets 413.
const MaxBody = 5 << 20

// Defaults of the per-repository rate limit: a steady request a second and
// bursts of 10; more get 429 with Retry-After.
const (
	DefaultLimit rate.Limit = 1
	DefaultBurst            = 10
)

// pendingFor is how long a requested fetch the controller has not handled
// yet absorbs further deliveries for its repository (they answer 202
// without writing); after it a delivery asks again.
const pendingFor = time.Minute

// maxLimiters bounds the per-repository limiters kept in memory (paths are
// chosen by whoever sends requests).
const maxLimiters = 10000

// Receiver verifies push events and triggers GitRepository fetches.
type Receiver struct {
	// Reader reads GitRepositories and Secrets.
	Reader client.Reader
	// Writer patches the reconcile-request annotation.
	Writer client.Client
	Log    logr.Logger
	// Now is the clock (tests may set it).
	Now func() time.Time
	// Limit and Burst rate-limit requests per repository path, signed or
	// not, before anything is read from the API server; zero uses
	// DefaultLimit and DefaultBurst.
	Limit rate.Limit
	Burst int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// ServeHTTP handles one push event.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, PathPrefix)
	ns, name, ok := strings.Cut(rest, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		http.Error(w, "path must be "+PathPrefix+"<namespace>/<name>", http.StatusNotFound)
		return
	}
	if !rc.allow(ns + "/" + name) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests for this repository", http.StatusTooManyRequests)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	repo := &gitopsv1.GitRepository{}
	key := types.NamespacedName{Namespace: ns, Name: name}
	// Unknown repositories and bad signatures both answer 401, so the
	// receiver does not tell which repositories exist.
	if err := rc.Reader.Get(ctx, key, repo); err != nil || repo.Spec.WebhookSecretRef == nil {
		rc.Log.V(1).Info("webhook refused: unknown repository or no webhook secret", "gitrepository", key)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	sec := &corev1.Secret{}
	if err := rc.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: repo.Spec.WebhookSecretRef.Name}, sec); err != nil || len(sec.Data["token"]) == 0 {
		rc.Log.Info("webhook refused: the webhook secret is missing or has no token", "gitrepository", key)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if err := Verify(r.Header, body, sec.Data["token"]); err != nil {
		rc.Log.Info("webhook refused", "gitrepository", key, "reason", err.Error())
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if rc.pending(repo) {
		// A fetch is already requested and not yet handled: it will fetch
		// the newest revision, this delivery included.
		rc.Log.V(1).Info("webhook accepted; fetch already requested", "gitrepository", key)
		w.WriteHeader(http.StatusAccepted)
		_, _ = fmt.Fprintln(w, "fetch already requested")
		return
	}
	if err := rc.trigger(ctx, repo); err != nil {
		rc.Log.Error(err, "cannot trigger fetch", "gitrepository", key)
		http.Error(w, "cannot trigger fetch", http.StatusInternalServerError)
		return
	}
	rc.Log.Info("webhook accepted; fetching", "gitrepository", key, "event", eventName(r.Header))
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintln(w, "fetch requested")
}

func (rc *Receiver) now() time.Time {
	if rc.Now != nil {
		return rc.Now()
	}
	return time.Now()
}

// allow takes a token of the repository's limiter.
func (rc *Receiver) allow(key string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.limiters == nil {
		rc.limiters = map[string]*rate.Limiter{}
	}
	l, ok := rc.limiters[key]
	if !ok {
		if len(rc.limiters) >= maxLimiters {
			// Forget idle limiters (full again); if none is idle, all.
			burst := float64(rc.burst())
			for k, v := range rc.limiters {
				if v.TokensAt(rc.now()) >= burst {
					delete(rc.limiters, k)
				}
			}
			if len(rc.limiters) >= maxLimiters {
				rc.limiters = map[string]*rate.Limiter{}
			}
		}
		limit := rc.Limit
		if limit == 0 {
			limit = DefaultLimit
		}
		l = rate.NewLimiter(limit, rc.burst())
		rc.limiters[key] = l
	}
	return l.AllowN(rc.now(), 1)
}

func (rc *Receiver) burst() int {
	if rc.Burst > 0 {
		return rc.Burst
	}
	return DefaultBurst
}

// pending reports whether a fetch this receiver requested recently is not
// handled yet.
func (rc *Receiver) pending(repo *gitopsv1.GitRepository) bool {
	v := repo.Annotations[gitopsv1.ReconcileRequestAnnotation]
	if v == "" || v == repo.Status.LastHandledReconcileAt {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	return err == nil && rc.now().Sub(at) < pendingFor && !at.After(rc.now())
}

func (rc *Receiver) trigger(ctx context.Context, repo *gitopsv1.GitRepository) error {
	now := rc.now
	patch := client.MergeFrom(repo.DeepCopy())
	a := repo.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[gitopsv1.ReconcileRequestAnnotation] = now().UTC().Format(time.RFC3339Nano)
	repo.SetAnnotations(a)
	if err := rc.Writer.Patch(ctx, repo, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cannot annotate GitRepository: %w", err)
	}
	return nil
}

func eventName(h http.Header) string {
	for _, k := range []string{"X-GitHub-Event", "X-Gitlab-Event"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return "generic"
}

// Errors of Verify.
var (
	ErrUnsigned     = errors.New("the request carries no signature or token")
	ErrBadSignature = errors.New("the signature or token does not match")
)

// Verify checks a request's signature: GitHub's X-Hub-Signature-256,
// GitLab's X-Gitlab-Token, or the generic X-Signature (sha256=<hex HMAC of
// the body>).
func Verify(h http.Header, body, token []byte) error {
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		return verifyHMAC(h.Get("X-Hub-Signature-256"), body, token)
	case h.Get("X-Gitlab-Token") != "":
		if subtle.ConstantTimeCompare([]byte(h.Get("X-Gitlab-Token")), token) != 1 {
			return ErrBadSignature
		}
		return nil
	case h.Get("X-Signature") != "":
		return verifyHMAC(h.Get("X-Signature"), body, token)
	}
	return ErrUnsigned
}

func verifyHMAC(sig string, body, token []byte) error {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, token)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// Sign returns the sha256=<hex> HMAC of body, as GitHub and the generic
// form send it.
func Sign(body, token []byte) string {
	m := hmac.New(sha256.New, token)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Server runs the receiver on addr until ctx ends; it calls ready with the
// address it listens on (useful with port 0).
func (rc *Receiver) Server(ctx context.Context, addr string, ready func(string)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen for webhooks on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(PathPrefix, rc)
	mux.Handle(AlertPathPrefix, rc.Alertmanager())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}
