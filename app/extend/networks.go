package extend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/httpclient"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
)

// Local is the local Keystone, as the extensions need it.
type Local interface {
	Validate(ctx context.Context, token string) (*keystone.Token, error)
	ServiceToken(ctx context.Context) (string, error)
}

// Tokens gives tokens at remote SPs (k2k.Exchanger).
type Tokens interface {
	Token(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, project string) (k2k.Scoped, error)
	Projects(ctx context.Context, sp *config.SP, user *keystone.Token, userToken string) ([]keystone.Project, error)
}

// Deps are what extensions use besides the configuration.
type Deps struct {
	Local  Local
	Tokens Tokens
	// Clients are the process's clients of the clouds, so that calls from here count
	// towards max_concurrent_requests with the proxy's; nil builds others from the
	// configuration.
	Clients *httpclient.Clients
	// Logger hears of every failure answered with a 5xx; discarded when nil.
	Logger *slog.Logger
}

// networksExtended implements POST /network/v2.0/networks/extended: a local network
// that extends a remote one, by reusing its VXLAN segmentation id.
type networksExtended struct {
	cfg  *config.Config
	deps Deps
}

func registerNetworksExtended(r *mux.Router, cfg *config.Config, deps Deps) {
	if deps.Local == nil || deps.Tokens == nil {
		return
	}
	if deps.Clients == nil {
		deps.Clients = httpclient.New(cfg)
	}
	n := &networksExtended{cfg: cfg, deps: deps}
	r.Methods(http.MethodPost).Path("/network/{version}/networks/extended").HandlerFunc(n.serve)
}

// neutronError is a Neutron answer other than the one expected.
type neutronError struct{ status int }

func (e *neutronError) Error() string { return fmt.Sprintf("Neutron answered %d", e.status) }

func (n *networksExtended) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// Under FastCGI a client that went away cancels nothing, and the clients bound
	// only the wait for an answer's headers.
	if n.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.RequestTimeout)
		defer cancel()
	}
	userToken := r.Header.Get("X-Auth-Token")
	user, err := n.deps.Local.Validate(ctx, userToken)
	if err != nil {
		apierr.Respond(w, r, n.deps.Logger, err)
		return
	}
	body, _, ok := readJSON(w, r, n.cfg.MaxJSONBodySize)
	if !ok {
		return
	}
	var req struct {
		ExistingNetID string `json:"existing_net_id"`
		ExistingNetSP string `json:"existing_net_sp"`
		Name          string `json:"name"`
	}
	if json.Unmarshal(body["network"], &req) != nil || req.ExistingNetID == "" || req.ExistingNetSP == "" {
		apierr.Write(w, http.StatusBadRequest, `the body needs {"network": {"existing_net_id": ..., "existing_net_sp": ...}}`)
		return
	}
	sp, known := n.cfg.SP(req.ExistingNetSP)
	local, _ := n.cfg.SP(config.LocalSP)
	if !known || sp.Local() || !sp.Enabled("network") || !local.Enabled("network") {
		apierr.Write(w, http.StatusUnprocessableEntity, fmt.Sprintf("%q is not a remote service provider with networks", req.ExistingNetSP))
		return
	}
	// The user must see the network, in one of their projects there.
	if err := n.visible(ctx, sp, user, userToken, req.ExistingNetID); err != nil {
		n.fail(w, r, err, fmt.Sprintf("network %s is not visible to you at %s", req.ExistingNetID, sp.Name))
		return
	}
	// Its segmentation id is admin-only: read it as mixmatch's own account there.
	admin, err := n.deps.Local.ServiceToken(ctx)
	if err != nil {
		n.fail(w, r, err, "")
		return
	}
	adminUser, err := n.deps.Local.Validate(ctx, admin)
	if err != nil {
		n.fail(w, r, err, "")
		return
	}
	remote, err := n.deps.Tokens.Token(ctx, sp, adminUser, admin, "")
	if err != nil {
		n.fail(w, r, err, "")
		return
	}
	var net struct {
		Network struct {
			SegmentationID *int `json:"provider:segmentation_id"`
		} `json:"network"`
	}
	if err := n.call(ctx, sp, http.MethodGet, "/v2.0/networks/"+url.PathEscape(req.ExistingNetID), remote.Token, nil, &net); err != nil {
		n.fail(w, r, err, fmt.Sprintf("network %s at %s cannot be read", req.ExistingNetID, sp.Name))
		return
	}
	if net.Network.SegmentationID == nil {
		apierr.Write(w, http.StatusUnprocessableEntity, fmt.Sprintf("network %s at %s has no segmentation id", req.ExistingNetID, sp.Name))
		return
	}
	// Neutron allows duplicate names; the extension does not, in the user's project.
	var same struct {
		Networks []json.RawMessage `json:"networks"`
	}
	q := url.Values{"name": {req.Name}, "project_id": {user.Project.ID}}
	if err := n.call(ctx, local, http.MethodGet, "/v2.0/networks?"+q.Encode(), admin, nil, &same); err != nil {
		n.fail(w, r, err, "")
		return
	}
	if len(same.Networks) > 0 {
		apierr.Write(w, http.StatusConflict, fmt.Sprintf("a network named %q exists in your project", req.Name))
		return
	}
	create := map[string]any{"network": map[string]any{"name": req.Name, "project_id": user.Project.ID,
		"provider:network_type": "vxlan", "provider:segmentation_id": *net.Network.SegmentationID}}
	var created json.RawMessage
	if err := n.call(ctx, local, http.MethodPost, "/v2.0/networks", admin, create, &created); err != nil {
		n.fail(w, r, err, "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(created)
}

// visible asks the SP's Neutron for the network with the user's token in each of
// their projects there.
func (n *networksExtended) visible(ctx context.Context, sp *config.SP, user *keystone.Token, userToken, id string) error {
	projects, err := n.deps.Tokens.Projects(ctx, sp, user, userToken)
	if err != nil {
		return err
	}
	last := error(&neutronError{status: http.StatusNotFound})
	for _, p := range projects {
		tok, err := n.deps.Tokens.Token(ctx, sp, user, userToken, p.ID)
		if err != nil {
			last = err
			continue
		}
		err = n.call(ctx, sp, http.MethodGet, "/v2.0/networks/"+url.PathEscape(id), tok.Token, nil, nil)
		if err == nil {
			return nil
		}
		last = err
	}
	return last
}

// fail picks the status: Neutron's 5xx is 503, its 404/403 (or none of the user's
// projects seeing it) is 422 with notVisible, its 409 stays 409, K2K failures keep
// theirs.
func (n *networksExtended) fail(w http.ResponseWriter, r *http.Request, err error, notVisible string) {
	var ne *neutronError
	switch {
	case errors.As(err, &ne) && ne.status >= 500:
		err = apierr.Wrap(http.StatusServiceUnavailable, err, "Neutron is unavailable")
	case errors.As(err, &ne) && ne.status == http.StatusConflict:
		err = apierr.Wrap(http.StatusConflict, err, "Neutron refused the network (409)")
	case (errors.As(err, &ne) || errors.Is(err, k2k.ErrNoProjects)) && notVisible != "":
		err = apierr.Wrap(http.StatusUnprocessableEntity, err, "%s", notVisible)
	case errors.As(err, &ne):
		err = apierr.Wrap(http.StatusBadGateway, err, "Neutron answered %d while extending the network", ne.status)
	}
	apierr.Respond(w, r, n.deps.Logger, err)
}

// maxNeutronAnswer bounds what is read of one Neutron answer about one network.
const maxNeutronAnswer = 1 << 20

// call asks sp's Neutron at path, through sp's clients so that its TLS options,
// timeouts and bound on calls in flight apply.
func (n *networksExtended) call(ctx context.Context, sp *config.SP, method, path, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, sp.Endpoint("network")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.deps.Clients.Services(sp).Do(req)
	if err != nil {
		return &neutronError{status: http.StatusServiceUnavailable}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxNeutronAnswer))
	if resp.StatusCode/100 != 2 {
		return &neutronError{status: resp.StatusCode}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return apierr.Wrap(http.StatusBadGateway, err, "Neutron's answer is not the JSON expected")
		}
	}
	return nil
}
