package source

import (
	"net/http"

	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/strata-dev/strata/internal/kit/egress"
)

// GuardHTTP makes every Git fetch over HTTP(S) in this process refuse to
// connect into the networks p denies (GitRepository URLs and kustomize remote
// bases are chosen by tenants). go-git's protocols are process-wide, so the
// manager calls it once at start; the CLI, which fetches with its user's own
// network, never does. SSH URLs are dialled by go-git directly and are not
// covered. It returns a function that restores go-git's default clients.
func GuardHTTP(p egress.Policy) (restore func()) {
	tr := p.Guard(http.DefaultTransport.(*http.Transport).Clone())
	c := githttp.NewClient(&http.Client{Transport: tr})
	client.InstallProtocol("http", c)
	client.InstallProtocol("https", c)
	return func() {
		client.InstallProtocol("http", githttp.DefaultClient)
		client.InstallProtocol("https", githttp.DefaultClient)
	}
}
