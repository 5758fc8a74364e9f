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

	"vscript/engine/event"
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
// the network namespace of via ("host" or "world"). Names resolve as they
// would for a program there.
func (e *Engine) HTTPGet(ctx context.Context, via, url string, timeout time.Duration) (*HTTPResponse, error) {
	start := time.Now()
	n, err := e.node(via)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.DialContext(ctx, network, addr)
	}
	return e.httpGet(ctx, via, url, timeout, dial, start)
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
	linux := "curl -s " + url
	if via != "host" {
		linux = "nsenter --net=<" + via + "> " + linux
	}
	e.emit(event.Event{Op: "http get", Subject: url, Docker: "curl " + url, Linux: []string{linux}}, start)
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
