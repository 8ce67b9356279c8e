package cluster

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestLockIsExclusiveAndRecoveredAfterItsOwnerDies(t *testing.T) {
	dir := t.TempDir()
	l, err := acquireLock(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if pid, _ := LockHolder(dir); pid != os.Getpid() {
		t.Errorf("LockHolder = %d, want this process %d", pid, os.Getpid())
	}
	if _, err := acquireLock(dir); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "strata down --state-dir") {
		t.Fatalf("second lock: got %v, want ErrInUse telling how to stop it", err)
	}
	l.release()
	if pid, _ := LockHolder(dir); pid != 0 {
		t.Errorf("LockHolder after release = %d, want 0", pid)
	}

	// A lock file left by a process that died holding it: the kernel has
	// dropped the flock, so the next start takes it without asking.
	script := "exec 9>" + dir + "/lock; flock -x 9; echo $$ >&9; kill -9 $$"
	_ = exec.Command("bash", "-c", script).Run()
	data, _ := os.ReadFile(dir + "/lock")
	if strings.TrimSpace(string(data)) == "" {
		t.Fatal("the crashed process left no PID in the lock file")
	}
	l, err = acquireLock(dir)
	if err != nil {
		t.Fatalf("lock after a crash: %v", err)
	}
	l.release()
}

func TestPKIServesLoopbackAndSurvivesRestart(t *testing.T) {
	p := pki{dir: t.TempDir()}
	if err := p.ensure(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p.caCert())
	if err := p.ensure(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p.caCert())
	if string(before) != string(after) {
		t.Fatal("a second ensure replaced the CA, which would invalidate every kubeconfig")
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(after)
	servingPEM, _ := os.ReadFile(p.servingCert())
	b, _ := pem.Decode(servingPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("serving certificate does not verify for %s: %v", host, err)
		}
	}
}

func TestChoosePortsKeepsFreePortsAndReplacesTakenOnes(t *testing.T) {
	c := &Cluster{state: &state{}}
	if err := c.choosePorts(); err != nil {
		t.Fatal(err)
	}
	first := *c.state
	if first.APIServerPort == 0 || first.APIServerPort == first.EtcdPort || first.EtcdPort == first.EtcdPeerPort {
		t.Fatalf("ports not distinct: %+v", first)
	}
	if err := c.choosePorts(); err != nil {
		t.Fatal(err)
	}
	if c.state.APIServerPort != first.APIServerPort {
		t.Errorf("a free API server port changed between starts: %d -> %d", first.APIServerPort, c.state.APIServerPort)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(c.state.APIServerPort))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := c.choosePorts(); err != nil {
		t.Fatal(err)
	}
	if c.state.APIServerPort == first.APIServerPort {
		t.Error("a taken API server port was kept")
	}
	c.cfg.Port = l.Addr().(*net.TCPAddr).Port
	if err := c.choosePorts(); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("an explicitly requested taken port: got %v, want 'already in use'", err)
	}
}
