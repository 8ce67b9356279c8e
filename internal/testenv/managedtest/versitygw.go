package managedtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/testenv"
)

// S3 is a running versitygw S3 server.
type S3 struct {
	// Endpoint is its http://127.0.0.1:port URL.
	Endpoint string
	// AccessKey and SecretKey are its root credentials.
	AccessKey, SecretKey string
}

// StartVersityGW runs bin/versitygw with the posix backend in a temporary
// directory on a free loopback port until the test ends.
func StartVersityGW(t testing.TB) *S3 {
	t.Helper()
	bin, err := testenv.Tool("versitygw")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	dir := t.TempDir()
	root, versions := filepath.Join(dir, "root"), filepath.Join(dir, "versions")
	for _, d := range []string{root, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := &S3{Endpoint: "http://" + addr, AccessKey: "strata-test", SecretKey: "strata-test-secret-" + Suffix()}
	cmd := testenv.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "--health", "/health",
		"posix", "--versioning-dir", versions, root)
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start versitygw: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = logf.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "versitygw.log"))
			t.Fatalf("versitygw did not become healthy at %s within 30s: %v\n%s", s.Endpoint, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// String names the server in messages.
func (s *S3) String() string { return fmt.Sprintf("versitygw at %s", s.Endpoint) }
