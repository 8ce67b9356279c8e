package source

import (
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"

	"github.com/strata-dev/strata/internal/kit/egress"
)

// sshPolicy is the policy Guard set for SSH fetches (nil: none).
var sshPolicy atomic.Pointer[egress.Policy]

// Guard makes every Git fetch in this process refuse the networks p denies
// (GitRepository URLs and kustomize remote bases are chosen by tenants).
// Over HTTP(S) the address is checked before connecting, on every
// connection; over SSH, which go-git dials itself, as soon as the
// connection is made, before the host key is accepted or any credential
// is offered. go-git's protocols are process-wide, so the manager calls it
// once at start; the CLI, which fetches with its user's own network, never
// does. It returns a function that restores go-git's defaults.
func Guard(p egress.Policy) (restore func()) {
	tr := p.Guard(http.DefaultTransport.(*http.Transport).Clone())
	c := githttp.NewClient(&http.Client{Transport: tr})
	client.InstallProtocol("http", c)
	client.InstallProtocol("https", c)
	sshPolicy.Store(&p)
	return func() {
		client.InstallProtocol("http", githttp.DefaultClient)
		client.InstallProtocol("https", githttp.DefaultClient)
		sshPolicy.Store(nil)
	}
}

// guardHostKey checks the address an SSH connection reached against the
// policy Guard set, then asks next.
func guardHostKey(next ssh.HostKeyCallback) ssh.HostKeyCallback {
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if p := sshPolicy.Load(); p != nil {
			if tcp, ok := remote.(*net.TCPAddr); ok {
				if addr, ok := netip.AddrFromSlice(tcp.IP); ok {
					if err := p.Check(addr); err != nil {
						return err
					}
				}
			}
		}
		return next(hostname, remote, key)
	}
}
