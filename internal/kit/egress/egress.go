package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Named groups of networks a Policy may deny by name.
var groups = map[string][]netip.Prefix{
	// The host itself: under `strata up` etcd and the API server's
	// insecure ports, in a pod the manager's own endpoints.
	"loopback": {netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	// Link-local, where clouds serve instance metadata and credentials
	// (169.254.169.254, fe80::/10).
	"link-local": {netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")},
	// Instance metadata addresses outside link-local (AWS's IPv6 one).
	"metadata": {netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("fd00:ec2::254/128")},
	// "This host" addresses, which Linux connects to the loopback.
	"unspecified": {netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("::/128")},
	// RFC 1918 and unique local addresses: pods, services and the
	// company network. Not denied by default: in-cluster receivers live
	// there.
	"private": {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7")},
}

// Default is what `strata manager` denies unless told otherwise: the
// manager's own host and the cloud's metadata service.
var Default = []string{"loopback", "link-local", "metadata", "unspecified"}

// Groups returns the names Parse accepts besides CIDRs.
func Groups() []string {
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// network is one denied prefix and the name it was given by.
type network struct {
	name   string
	prefix netip.Prefix
}

// Policy is a set of denied networks. The zero Policy denies nothing.
type Policy struct {
	denied []network
}

// Empty says whether p denies nothing.
func (p Policy) Empty() bool { return len(p.denied) == 0 }

// Parse reads a list of group names (Groups) and CIDRs. An empty list
// denies nothing.
func Parse(items []string) (Policy, error) {
	var p Policy
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if ps, ok := groups[item]; ok {
			for _, pr := range ps {
				p.denied = append(p.denied, network{name: item, prefix: pr})
			}
			continue
		}
		pr, err := netip.ParsePrefix(item)
		if err != nil {
			return Policy{}, fmt.Errorf("%q is neither a CIDR nor one of %s", item, strings.Join(Groups(), ", "))
		}
		p.denied = append(p.denied, network{name: pr.Masked().String(), prefix: pr.Masked()})
	}
	return p, nil
}

// MustParse is Parse for lists known to be valid.
func MustParse(items ...string) Policy {
	p, err := Parse(items)
	if err != nil {
		panic(err)
	}
	return p
}

// String lists the denied networks' names, without repeats.
func (p Policy) String() string {
	seen := map[string]bool{}
	var names []string
	for _, n := range p.denied {
		if !seen[n.name] {
			seen[n.name] = true
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// DeniedError is a connection the Policy refused.
type DeniedError struct {
	// Addr is the address that was refused, Network the denied network's
	// name (a group or a CIDR).
	Addr    netip.Addr
	Network string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("address %s is in a network the manager does not connect to for tenants (%s; its --egress-denied-networks)", e.Addr, e.Network)
}

// IsDenied says whether err is, or wraps, a DeniedError.
func IsDenied(err error) bool {
	var d *DeniedError
	return errors.As(err, &d)
}

// Check returns a *DeniedError when addr is in a denied network.
func (p Policy) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, n := range p.denied {
		if n.prefix.Contains(addr) {
			return &DeniedError{Addr: addr, Network: n.name}
		}
	}
	return nil
}

// CheckHost checks a URL's host when it is an IP literal, so that an address
// the Policy denies can be reported before anything is sent. A name is
// checked only when it is dialled (Guard).
func (p Policy) CheckHost(host string) error {
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return nil
	}
	return p.Check(addr)
}

// control is a net.Dialer Control: it sees the resolved address of every
// connection before it is made.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("cannot check address %q: %w", host, err)
	}
	return p.Check(addr)
}

// Guard makes tr check every connection's resolved address against p. A
// connection to the proxy tr's Proxy names for a request is not checked.
// It returns tr.
func (p Policy) Guard(tr *http.Transport) *http.Transport {
	if p.Empty() {
		return tr
	}
	tr.DialContext = p.DialContext(tr.Proxy)
	return tr
}

// DialContext returns a dial function that checks every connection's
// resolved address against p, except a connection to the proxy that proxy
// (a transport's Proxy; nil for none) names. For clients that take a dial
// function rather than a transport (client-go's rest.Config.Dial).
func (p Policy) DialContext(proxy func(*http.Request) (*url.URL, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	plain := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialTimeout}
	guarded := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialTimeout, Control: p.control}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxy != nil && isProxy(proxy, addr) {
			return plain.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}

// dialTimeout is net/http's default transport's.
const dialTimeout = 30 * time.Second

// isProxy says whether addr (host:port) is the proxy the transport's Proxy
// function picks for an http or https request to anywhere.
func isProxy(proxy func(*http.Request) (*url.URL, error), addr string) bool {
	for _, scheme := range []string{"http", "https"} {
		req, _ := http.NewRequest(http.MethodGet, scheme+"://strata.invalid/", nil)
		u, err := proxy(req)
		if err != nil || u == nil {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443", "socks5": "1080"}[u.Scheme]
		}
		if net.JoinHostPort(u.Hostname(), port) == addr {
			return true
		}
	}
	return false
}
