package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/util/jsonpath"
)

// maxBody bounds what a measurement reads from a server.
const maxBody = 1 << 20

// DefaultTimeout bounds a query or request without a timeout.
const DefaultTimeout = 10 * time.Second

// Request is an HTTP measurement: a Prometheus query or a web request.
type Request struct {
	Method  string
	URL     string
	Headers map[string]string
	Body    string
	// BearerToken or Username/Password authenticate the request.
	BearerToken        string
	Username, Password string
	Timeout            time.Duration
}

func do(ctx context.Context, c *http.Client, r Request) ([]byte, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if r.Body != "" {
		body = strings.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("invalid request: %w", err)
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case r.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+r.BearerToken)
	case r.Username != "":
		req.SetBasicAuth(r.Username, r.Password)
	}
	resp, err := c.Do(req)
	if err != nil {
		// The error names the URL, never the credentials (they are in
		// headers).
		return nil, fmt.Errorf("request failed: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("cannot read the response: %w", err)
	}
	if resp.StatusCode >= 400 {
		return data, fmt.Errorf("server answered %s", resp.Status)
	}
	return data, nil
}

// Prometheus runs an instant query against address. A vector gives the
// list of its sample values (samples that are NaN dropped), a scalar a
// number; an empty vector or a NaN scalar is no data.
func Prometheus(ctx context.Context, c *http.Client, address, query string, r Request) (value any, noData bool, err error) {
	r.URL = strings.TrimRight(address, "/") + "/api/v1/query?query=" + url.QueryEscape(query)
	r.Method = http.MethodGet
	data, err := do(ctx, c, r)
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if data != nil {
		if jerr := json.Unmarshal(data, &body); jerr == nil && body.Status == "error" {
			return nil, false, fmt.Errorf("prometheus %s: %s", body.ErrorType, body.Error)
		}
	}
	if err != nil {
		return nil, false, err
	}
	if body.Status != "success" {
		return nil, false, fmt.Errorf("unexpected answer from prometheus (status %q)", body.Status)
	}
	switch body.Data.ResultType {
	case "vector":
		var samples []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(body.Data.Result, &samples); err != nil {
			return nil, false, fmt.Errorf("cannot decode vector: %w", err)
		}
		out := []any{}
		for _, s := range samples {
			f, err := sampleValue(s.Value[1])
			if err != nil {
				return nil, false, err
			}
			if !math.IsNaN(f) {
				out = append(out, f)
			}
		}
		return out, len(out) == 0, nil
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return nil, false, fmt.Errorf("cannot decode scalar: %w", err)
		}
		f, err := sampleValue(s[1])
		if err != nil {
			return nil, false, err
		}
		return f, math.IsNaN(f), nil
	case "string":
		var s [2]any
		if err := json.Unmarshal(body.Data.Result, &s); err != nil {
			return nil, false, fmt.Errorf("cannot decode string: %w", err)
		}
		v, _ := s[1].(string)
		return v, false, nil
	}
	return nil, false, fmt.Errorf("query gives a %s; an instant vector or scalar is needed", body.Data.ResultType)
}

func sampleValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q is not a number: %w", s, err)
	}
	return f, nil
}

// Web makes an HTTP request. The result is the JSON body, or what
// jsonPath (Kubernetes JSONPath) selects from it: one match as itself,
// several as a list. An empty body or a path that matches nothing is no
// data; a body that is not JSON is a string.
func Web(ctx context.Context, c *http.Client, r Request, path string) (value any, noData bool, err error) {
	data, err := do(ctx, c, r)
	if err != nil {
		return nil, false, err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, true, nil
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		if path != "" {
			return nil, false, fmt.Errorf("response is not JSON, so jsonPath %q cannot select from it", path)
		}
		return string(data), false, nil
	}
	if path == "" {
		return doc, doc == nil, nil
	}
	return JSONPath(doc, path)
}

// JSONPath selects from a decoded JSON document with a Kubernetes JSONPath
// (`{.a.b}` or `.a.b`); nothing selected is no data.
func JSONPath(doc any, path string) (value any, noData bool, err error) {
	if !strings.HasPrefix(strings.TrimSpace(path), "{") {
		path = "{" + path + "}"
	}
	jp := jsonpath.New("metric").AllowMissingKeys(true)
	if err := jp.Parse(path); err != nil {
		return nil, false, fmt.Errorf("invalid jsonPath %q: %w", path, err)
	}
	res, err := jp.FindResults(doc)
	if err != nil {
		return nil, false, fmt.Errorf("jsonPath %q: %w", path, err)
	}
	var out []any
	for _, set := range res {
		for _, v := range set {
			if v.IsValid() && v.CanInterface() {
				out = append(out, v.Interface())
			}
		}
	}
	switch len(out) {
	case 0:
		return nil, true, nil
	case 1:
		return out[0], out[0] == nil, nil
	}
	return out, false, nil
}
