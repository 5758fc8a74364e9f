package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"vscript/engine/errdefs"
	"vscript/engine/event"
	"vscript/engine/lab"
)

// maxBody bounds what HTTPGet reads, so a runaway server cannot eat the lab.
const maxBody = 16 << 20

// HTTPResponse is the part of an HTTP answer a script sees.
type HTTPResponse struct {
	Status  int
	Body    string
	Headers map[string]string // canonical names; repeated headers joined by ", "
}

// HTTPGet fetches url with a native client whose connections start inside
// the network namespace of via: "host", "world", or a running container
// (name, id or id prefix). Names resolve as they would for a program there:
// a container asks the nameserver of its own /etc/resolv.conf (the embedded
// DNS on a user network), the host and the world the lab host's.
func (e *Engine) HTTPGet(ctx context.Context, via, url string, timeout time.Duration) (*HTTPResponse, error) {
	start := time.Now()
	n, resolver, release, err := e.dialNode(via)
	if err != nil {
		return nil, err
	}
	defer release()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if resolver != nil {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if net.ParseIP(host) == nil {
				ips, err := resolver.LookupIP(ctx, "ip4", host)
				if err != nil {
					return nil, err
				}
				addr = net.JoinHostPort(ips[0].String(), port)
			}
		}
		return n.DialContext(ctx, network, addr)
	}
	return e.httpGet(ctx, n.Name, url, timeout, dial, start)
}

// dialNode returns the place connections start from for via, with the
// resolver a program there would use (nil: the lab host's own), and what to
// release when done.
func (e *Engine) dialNode(via string) (*lab.Node, *net.Resolver, func(), error) {
	if via == "host" || via == "world" {
		n, err := e.node(via)
		return n, nil, func() {}, err
	}
	e.mu.Lock()
	c, err := e.lookup(via)
	var pid int
	if err == nil && c.rt != nil {
		pid = c.rt.Pid()
	}
	e.mu.Unlock()
	if err != nil {
		return nil, nil, nil, errdefs.WithHint(fmt.Errorf("via %s: %w", via, errdefs.ErrNotFound),
			"via is host, world or a running container")
	}
	if pid == 0 {
		return nil, nil, nil, fmt.Errorf("via %s: %w: the container is not running", c.name, errdefs.ErrConflict)
	}
	n, err := lab.NewNode(c.name, nil, fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, nil, nil, err
	}
	_, resolv := e.netEtc(c)
	var resolver *net.Resolver
	if ns := nameservers(string(resolv)); len(ns) > 0 {
		server := net.JoinHostPort(ns[0], "53")
		resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return n.DialContext(ctx, network, server)
		}}
	}
	return n, resolver, func() { n.Close() }, nil
}

func (e *Engine) httpGet(ctx context.Context, via, url string, timeout time.Duration,
	dial func(context.Context, string, string) (net.Conn, error), start time.Time) (*HTTPResponse, error) {
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:             nil, // never the machine's proxy settings
			DialContext:       dial,
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("http_get %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("http_get %s: %w", url, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("http_get %s: reading body: %w", url, err)
	}
	headers := map[string]string{}
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		headers[k] = strings.Join(resp.Header[k], ", ")
	}
	// via is a node's name: host, world or a container's.
	docker, linux := "curl "+url, "curl -s "+url
	switch via {
	case "host":
	case "world":
		docker += "  # from another machine"
		linux = "ip netns exec world " + linux
	default:
		docker = "docker exec " + via + " wget -qO- " + url
		linux = "nsenter --net=<" + via + "> " + linux
	}
	e.emit(event.Event{Op: "http get", Subject: url, Docker: docker, Linux: []string{linux}}, start)
	return &HTTPResponse{Status: resp.StatusCode, Body: string(body), Headers: headers}, nil
}

// unwrapURLError drops net/http's `Get "url": ` prefix; our own message
// already names the URL.
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && strings.HasPrefix(err.Error(), "Get ") {
		return u.Unwrap()
	}
	return err
}
