package egress

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParse(t *testing.T) {
	for name, tc := range map[string]struct {
		items   []string
		want    string
		wantErr string
	}{
		"empty denies nothing":  {items: nil, want: ""},
		"default":               {items: Default, want: "loopback,link-local,metadata,unspecified"},
		"cidr is masked":        {items: []string{"10.1.2.3/8", " private "}, want: "10.0.0.0/8,private"},
		"blank items skipped":   {items: []string{"", "loopback", ""}, want: "loopback"},
		"unknown group refused": {items: []string{"loopback", "internal"}, wantErr: `"internal" is neither a CIDR nor one of link-local, loopback, metadata, private, unspecified`},
		"bare address refused":  {items: []string{"10.0.0.1"}, wantErr: `"10.0.0.1" is neither a CIDR`},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Parse(tc.items)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %v, want error containing %q", tc.items, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("Parse(%q) = %q, want %q", tc.items, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	def := MustParse(Default...)
	for name, tc := range map[string]struct {
		policy  Policy
		addr    string
		network string // "" means allowed
	}{
		"loopback v4":               {policy: def, addr: "127.0.0.1", network: "loopback"},
		"loopback anywhere in /8":   {policy: def, addr: "127.45.6.7", network: "loopback"},
		"loopback v6":               {policy: def, addr: "::1", network: "loopback"},
		"loopback mapped into v6":   {policy: def, addr: "::ffff:127.0.0.1", network: "loopback"},
		"cloud metadata":            {policy: def, addr: "169.254.169.254", network: "link-local"},
		"aws metadata v6":           {policy: def, addr: "fd00:ec2::254", network: "metadata"},
		"unspecified":               {policy: def, addr: "0.0.0.0", network: "unspecified"},
		"pod network allowed":       {policy: def, addr: "10.244.1.7", network: ""},
		"public allowed":            {policy: def, addr: "203.0.113.9", network: ""},
		"private denied when asked": {policy: MustParse("private"), addr: "192.168.1.1", network: "private"},
		"cidr":                      {policy: MustParse("10.96.0.0/12"), addr: "10.96.0.1", network: "10.96.0.0/12"},
		"zero policy allows all":    {policy: Policy{}, addr: "127.0.0.1", network: ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.policy.Check(netip.MustParseAddr(tc.addr))
			var d *DeniedError
			switch {
			case tc.network == "" && err != nil:
				t.Fatalf("Check(%s) = %v, want allowed", tc.addr, err)
			case tc.network != "" && !errors.As(err, &d):
				t.Fatalf("Check(%s) = %v, want denied (%s)", tc.addr, err, tc.network)
			case tc.network != "" && d.Network != tc.network:
				t.Fatalf("Check(%s) denied as %q, want %q", tc.addr, d.Network, tc.network)
			}
		})
	}
}

// server counts the requests that reach it.
func server(t *testing.T, addr string, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s, &n
}

func TestGuardRefusesBeforeAnythingIsSent(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) {}
	// 127.0.0.2 stands for a denied network, 127.0.0.1 for an allowed one:
	// both are on this machine's loopback, so no network is needed.
	denied, deniedHits := server(t, "127.0.0.2:0", ok)
	allowed, allowedHits := server(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, denied.URL+"/", http.StatusFound)
		}
	})
	p := MustParse("127.0.0.2/32")
	hc := &http.Client{Transport: p.Guard(http.DefaultTransport.(*http.Transport).Clone())}

	for name, tc := range map[string]struct {
		url    string
		denied bool
	}{
		"allowed address":                     {url: allowed.URL + "/", denied: false},
		"denied address":                      {url: denied.URL + "/", denied: true},
		"redirect from allowed to denied":     {url: allowed.URL + "/redirect", denied: true},
		"a name is checked once resolved":     {url: "http://localhost:" + port(t, allowed.URL) + "/", denied: false},
		"v4-mapped literal of the denied one": {url: "http://[::ffff:127.0.0.2]:" + port(t, denied.URL) + "/", denied: true},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := hc.Post(tc.url, "application/json", strings.NewReader(`{}`))
			if resp != nil {
				resp.Body.Close()
			}
			if got := IsDenied(err); got != tc.denied {
				t.Fatalf("POST %s: err = %v, denied = %v, want %v", tc.url, err, got, tc.denied)
			}
		})
	}
	if n := deniedHits.Load(); n != 0 {
		t.Errorf("the denied server got %d requests, want none", n)
	}
	if allowedHits.Load() == 0 {
		t.Error("the allowed server got no request")
	}

	// localhost resolves into the default's loopback: refused once
	// resolved, not by its name.
	def := &http.Client{Transport: MustParse(Default...).Guard(http.DefaultTransport.(*http.Transport).Clone())}
	before := allowedHits.Load()
	if _, err := def.Get("http://localhost:" + port(t, allowed.URL) + "/"); !IsDenied(err) {
		t.Fatalf("GET localhost under the default policy: %v, want denied", err)
	}
	if allowedHits.Load() != before {
		t.Error("a request reached the loopback server under the default policy")
	}
}

func TestGuardLetsTheConfiguredProxyThrough(t *testing.T) {
	proxy, hits := server(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		// A forward proxy sees the absolute target URL.
		if r.URL.Host != "receiver.example:80" && r.URL.Host != "receiver.example" {
			t.Errorf("proxy asked for %q", r.URL.String())
		}
	})
	pu, _ := url.Parse(proxy.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(pu)
	hc := &http.Client{Transport: MustParse(Default...).Guard(tr)}
	resp, err := hc.Get("http://receiver.example/")
	if err != nil {
		t.Fatalf("through the admin's proxy on loopback: %v", err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("proxy got %d requests, want 1", hits.Load())
	}
}

func port(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

func TestCheckHost(t *testing.T) {
	p := MustParse(Default...)
	for host, denied := range map[string]bool{
		"169.254.169.254": true, "[::1]": true, "127.0.0.1": true,
		"hooks.slack.com": false, "10.0.0.1": false, "localhost": false, // names are checked when dialled
	} {
		if got := IsDenied(p.CheckHost(host)); got != denied {
			t.Errorf("CheckHost(%q) denied = %v, want %v", host, got, denied)
		}
	}
}
