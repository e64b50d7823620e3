package proxy

import (
	"context"
	"errors"
	"net/http"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/k2k"
	"mixmatch/app/keystone"
)

// serviceRole makes a service token a service's: the default of keystonemiddleware's
// and Cinder's [keystone_authtoken] service_token_roles, which Nova's service user
// has in every deployment guide.
const serviceRole = "service"

// authorizeService sets what a remote SP gets in place of the caller's service
// token. A local service token means nothing to a remote Keystone (which would
// refuse the whole call for it), so with [sp_*] service_token = k2k a caller whose
// service token the local Keystone accepts, with the service role, gets mixmatch's
// own token at the SP in its stead: the SP's Cinder then trusts the call as a
// service's (a detach of a volume Nova holds) as far as it trusts mixmatch.
func (p *Proxy) authorizeService(ctx context.Context, t *target) error {
	t.serviceToken, t.serviceOwner, t.serviceProject = "", "", ""
	if t.callerService == "" || t.sp.Local() || t.sp.ServiceToken != config.ServiceTokenK2K || p.service == nil {
		return nil
	}
	caller, err := p.auth.Validate(ctx, t.callerService)
	if errors.Is(err, keystone.ErrInvalidToken) {
		// As keystonemiddleware answers a call whose service token is invalid.
		return apierr.Wrap(http.StatusUnauthorized, err, "the service token (X-Service-Token) is invalid or has expired")
	}
	if err != nil {
		return err
	}
	if !hasRole(caller, serviceRole) {
		// A user's token sent as a service token: the call is the user's alone.
		return nil
	}
	own, err := p.service.ServiceToken(ctx)
	var me *keystone.Token
	if err == nil {
		me, err = p.auth.Validate(ctx, own)
	}
	var s k2k.Scoped
	if err == nil {
		s, err = p.tokens.Token(ctx, t.sp, me, own, "")
	}
	if err != nil {
		// The SP then decides as for the user's call; a mapping that refuses
		// mixmatch's account must show in the log, not fail every volume call.
		p.logger.Warn("no service token for a service provider; the call goes with the user's token alone",
			"sp", t.sp.Name, "error", err)
		return nil
	}
	t.serviceToken, t.serviceOwner, t.serviceProject = s.Token, own, s.ProjectID
	return nil
}

func hasRole(t *keystone.Token, role string) bool {
	for _, r := range t.Roles {
		if r.Name == role {
			return true
		}
	}
	return false
}
