package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/keystone"
	"mixmatch/app/reqinfo"
	"mixmatch/app/services"
	"mixmatch/app/store"
)

// Routing by parent: a create that names in its body the resource it is made from
// or for (a snapshot's volume_id, an attachment's volume_uuid, a volume's
// source_volid, a backup's snapshot_id: the collection's Refs) can only succeed in
// that resource's cloud, as no service reaches across clouds. So it goes there,
// in the parent's project, unless the client's MM-SERVICE-PROVIDER says where.

// parentRef is one parent a create's body names.
type parentRef struct {
	services.Ref
	id string
}

// holdCreateBody reads the body of a create that may name parents, at most
// max_json_body_size, and puts the same bytes back for the SP. nil when the call
// names none, or its cloud is the client's to choose.
func (p *Proxy) holdCreateBody(r *http.Request, info reqinfo.Request) ([]byte, error) {
	c, ok := services.Lookup(info.Service, info.ResourceType)
	if !ok || len(c.Refs) == 0 || !info.IsCreate(r.Method) || r.Body == nil || r.Body == http.NoBody ||
		r.Header.Get("MM-SERVICE-PROVIDER") != "" && !reqinfo.IsRoutedByName(r) {
		return nil, nil
	}
	limit := p.cfg.MaxJSONBodySize
	raw, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	r.Body.Close()
	if err != nil {
		return nil, apierr.Wrap(http.StatusBadRequest, err, "the request body could not be read")
	}
	if len(raw) > limit {
		return nil, apierr.New(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes (max_json_body_size)", limit)
	}
	// The SP gets the body as the client wrote it: what mixmatch read is only
	// where to send it.
	r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(raw)), int64(len(raw)), nil
	return raw, nil
}

// parentRefs are the parents a create's body names, in the table's order. A body
// that is no JSON object, or a field that is no string, names none: the service
// answers such a body itself.
func parentRefs(c *services.Collection, raw []byte) []parentRef {
	var body map[string]json.RawMessage
	if json.Unmarshal(raw, &body) != nil {
		return nil
	}
	member := c.Member(body)
	var refs []parentRef
	for _, ref := range c.Refs {
		var id string
		if json.Unmarshal(member[ref.Field], &id) == nil && strings.TrimSpace(id) != "" {
			refs = append(refs, parentRef{ref, id})
		}
	}
	return refs
}

// byParents is where a create goes by the parents its body names: the cloud that
// holds them, in the first one's project; nil when no parent's cloud is known. A
// body naming parents in two clouds names what no cloud can make (400).
func (p *Proxy) byParents(r *http.Request, info reqinfo.Request, raw []byte, user *keystone.Token, userToken string, skip map[string]bool) (*target, error) {
	c, _ := services.Lookup(info.Service, info.ResourceType)
	var found *target
	var first parentRef
	for _, ref := range parentRefs(c, raw) {
		t, err := p.locateParent(r, info, ref, user, userToken, skip)
		if err != nil || t == nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		if found == nil {
			found, first = t, ref
		} else if t.sp != found.sp {
			return nil, apierr.New(http.StatusBadRequest, "%s names %s %s at service provider %s and %s %s at %s; they must be in one cloud",
				services.Noun(info.Service, info.ResourceType), first.Field, first.id, found.sp.Name, ref.Field, ref.id, t.sp.Name)
		}
	}
	if found == nil {
		return nil, nil
	}
	return &target{sp: found.sp, project: found.project, info: info, user: user, userToken: userToken,
		ownersProject: true, chosen: r.Header.Get("MM-PROJECT-ID"), parent: first.Field + " " + first.id}, nil
}

// locateParent finds a parent as a call about it would be found: its mapping, else
// a broadcast for it when search_by_broadcast is on. nil when neither knows it:
// the create then goes where it would without a parent, and that cloud answers.
func (p *Proxy) locateParent(r *http.Request, info reqinfo.Request, ref parentRef, user *keystone.Token, userToken string, skip map[string]bool) (*target, error) {
	m, err := p.store.Find(r.Context(), ref.Type, ref.id)
	if err == nil {
		if sp, ok := p.cfg.SP(m.ResourceSP); ok && sp.Enabled(info.Service) && !skip[sp.SPName] {
			return &target{sp: sp, project: m.ProjectID}, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		p.logger.Warn("mapping lookup failed; going on without it", "type", ref.Type, "id", ref.id, "error", err)
	}
	if !p.cfg.SearchByBroadcast {
		return nil, nil
	}
	svc, _ := services.Get(info.Service)
	pc, _ := svc.ByRow(ref.Type)
	parent := reqinfo.Request{Service: info.Service, Version: info.Version, ProjectID: info.ProjectID,
		ResourceType: pc.Type, ResourceID: ref.id}
	t, err := p.broadcast(r, parent, user, userToken, skip)
	var e *apierr.Error
	switch {
	case errors.As(err, &e) && e.Status == http.StatusNotFound:
		return nil, nil
	case err != nil:
		return nil, err
	case t.answer != nil && t.answer.status/100 != 2:
		// Every SP refused to show it: no cloud holds it for this user.
		return nil, nil
	}
	if t.learn {
		p.remember(r.Context(), t, ref.id, "broadcast")
	}
	return t, nil
}

// checkNamed refuses a create routed by its name (NAME@SP) to one cloud whose
// parent is in another: the name would be honoured by a create that cannot work.
func checkNamed(named *config.SP, byParent *target) error {
	if byParent == nil || byParent.sp == named {
		return nil
	}
	return apierr.New(http.StatusBadRequest, "the name ends in @%s, but %s is at service provider %s",
		named.Name, byParent.parent, byParent.sp.Name)
}
