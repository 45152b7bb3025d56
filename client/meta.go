package client

import "context"

// Route is one route of the API, as GET /v1/ lists it.
type Route struct {
	Method      string   `json:"method"`
	Path        string   `json:"path"` // with {name} for a path parameter
	Description string   `json:"description"`
	Query       []string `json:"query"` // the query parameters it takes
	// Scope is the scope of token it needs from a daemon started with --auth: read,
	// write or admin; empty for none.
	Scope string `json:"scope,omitempty"`
}

// Routes lists the routes of the daemon's API.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out struct {
		Routes []Route `json:"routes"`
	}
	err := c.do(ctx, "GET", "/v1/", nil, &out)
	return out.Routes, err
}

// OpenAPI returns the daemon's OpenAPI 3.1 document of its API, as JSON.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	return c.raw(ctx, "/v1/openapi.json")
}

// Metrics returns the daemon's Prometheus metrics, in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.raw(ctx, "/metrics")
}

// raw GETs path and returns its body as it is.
func (c *Client) raw(ctx context.Context, path string) ([]byte, error) {
	req, err := c.request(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Del("Accept") // whatever the route serves
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	body, err := c.answer(ctx, resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return nil, apiError(resp, body)
	}
	return body, nil
}
