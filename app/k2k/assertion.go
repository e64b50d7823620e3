package k2k

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	saml2 "github.com/russellhaering/gosaml2"
	"github.com/russellhaering/gosaml2/types"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

const (
	soapNS     = "http://schemas.xmlsoap.org/soap/envelope/"
	protocolNS = "urn:oasis:names:tc:SAML:2.0:protocol"
	// maxEnvelope bounds what mixmatch reads from the local Keystone; an assertion
	// with a few hundred roles and groups stays far below it.
	maxEnvelope = 1 << 20
)

// Assertion is what mixmatch reads of the SAML assertion Keystone issued for a K2K
// exchange: enough to log who goes where, and to refuse an expired one.
type Assertion struct {
	Issuer      string
	Subject     string
	Destination string
	Attributes  map[string][]string
	// Expires is the earlier of SubjectConfirmationData@NotOnOrAfter and
	// AuthnStatement@SessionNotOnOrAfter (Keystone's assertion has no Conditions).
	Expires  time.Time
	Verified bool
}

// ErrAssertion is an ECP envelope mixmatch refuses to present to a service provider.
var ErrAssertion = errors.New("unusable SAML assertion")

// errExpired marks an assertion refused for its age, which no metadata refresh mends.
var errExpired = errors.New("expired")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAssertion, fmt.Sprintf(format, args...))
}

// ResponseXML extracts the samlp:Response of an ECP SOAP envelope as a document of
// its own, namespace declarations included: what an SP's ECP consumer verifies.
func ResponseXML(envelope []byte) ([]byte, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(envelope); err != nil {
		return nil, refuse("not XML: %v", err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Envelope" || root.NamespaceURI() != soapNS {
		return nil, refuse("not a SOAP envelope")
	}
	// Searched from the root: the namespaces are declared on the Envelope.
	resp, err := etreeutils.NSFindOne(root, protocolNS, "Response")
	if err != nil || resp == nil || resp.Parent() == nil || resp.Parent().Tag != "Body" {
		return nil, refuse("no samlp:Response in the SOAP Body")
	}
	ctx, err := etreeutils.NSBuildParentContext(resp)
	if err != nil {
		return nil, refuse("%v", err)
	}
	detached, err := etreeutils.NSDetatch(ctx, resp)
	if err != nil {
		return nil, refuse("%v", err)
	}
	out := etree.NewDocument()
	out.SetRoot(detached)
	return out.WriteToBytes()
}

// IdP is the local Keystone as a SAML identity provider: its entity id and the
// certificates its metadata publishes.
type IdP struct {
	EntityID string
	Certs    []*x509.Certificate
}

// ParseMetadata reads GET /v3/OS-FEDERATION/saml2/metadata.
func ParseMetadata(raw []byte) (*IdP, error) {
	var md types.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("IdP metadata: %w", err)
	}
	if md.IDPSSODescriptor == nil {
		return nil, errors.New("IdP metadata has no IDPSSODescriptor")
	}
	idp := &IdP{EntityID: md.EntityID}
	for _, kd := range md.IDPSSODescriptor.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
			if err != nil {
				return nil, fmt.Errorf("IdP metadata certificate: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("IdP metadata certificate: %w", err)
			}
			idp.Certs = append(idp.Certs, cert)
		}
	}
	if len(idp.Certs) == 0 {
		return nil, errors.New("IdP metadata publishes no signing certificate")
	}
	return idp, nil
}

// ParseEnvelope reads the assertion of an ECP envelope and refuses a failed, expired
// or malformed one. With idp set, the assertion's signature must verify against its
// certificates and come from its entity id, for the given assertion consumer URL.
func ParseEnvelope(envelope []byte, idp *IdP, spURL string, now time.Time) (*Assertion, error) {
	if len(envelope) > maxEnvelope {
		return nil, refuse("envelope larger than %d bytes", maxEnvelope)
	}
	raw, err := ResponseXML(envelope)
	if err != nil {
		return nil, err
	}
	var resp *types.Response
	verified := false
	if idp != nil {
		sp := &saml2.SAMLServiceProvider{
			IdentityProviderIssuer:      idp.EntityID,
			AssertionConsumerServiceURL: spURL,
			IDPCertificateStore:         &dsig.MemoryX509CertificateStore{Roots: idp.Certs},
			Clock:                       dsig.NewFakeClockAt(now),
		}
		resp, err = sp.ValidateEncodedResponse(base64.StdEncoding.EncodeToString(raw))
		if err != nil {
			return nil, refuse("does not verify against the IdP metadata: %v", err)
		}
		verified = true
	} else {
		resp = &types.Response{}
		if err := xml.NewDecoder(bytes.NewReader(raw)).Decode(resp); err != nil {
			return nil, refuse("undecodable Response: %v", err)
		}
	}
	if resp.Status == nil || resp.Status.StatusCode == nil || resp.Status.StatusCode.Value != saml2.StatusCodeSuccess {
		return nil, refuse("the Response status is not Success")
	}
	if len(resp.Assertions) != 1 {
		return nil, refuse("%d assertions, want exactly one", len(resp.Assertions))
	}
	return readAssertion(&resp.Assertions[0], resp.Destination, verified, now)
}

func readAssertion(a *types.Assertion, destination string, verified bool, now time.Time) (*Assertion, error) {
	out := &Assertion{Destination: destination, Verified: verified, Attributes: map[string][]string{}}
	if a.Issuer == nil || a.Issuer.Value == "" {
		return nil, refuse("no Issuer")
	}
	out.Issuer = a.Issuer.Value
	if a.Signature == nil && !verified {
		return nil, refuse("the assertion is not signed")
	}
	s := a.Subject
	if s == nil || s.NameID == nil || s.SubjectConfirmation == nil || s.SubjectConfirmation.SubjectConfirmationData == nil {
		return nil, refuse("no Subject with a bearer confirmation")
	}
	out.Subject = s.NameID.Value
	notOnOrAfter, err := time.Parse(time.RFC3339Nano, s.SubjectConfirmation.SubjectConfirmationData.NotOnOrAfter)
	if err != nil {
		return nil, refuse("SubjectConfirmationData NotOnOrAfter %q: %v", s.SubjectConfirmation.SubjectConfirmationData.NotOnOrAfter, err)
	}
	out.Expires = notOnOrAfter
	if st := a.AuthnStatement; st != nil && st.SessionNotOnOrAfter != nil && st.SessionNotOnOrAfter.Before(out.Expires) {
		out.Expires = *st.SessionNotOnOrAfter
	}
	if !now.Before(out.Expires) {
		return nil, fmt.Errorf("%w: %w at %s", ErrAssertion, errExpired, out.Expires.UTC().Format(time.RFC3339))
	}
	if a.AttributeStatement != nil {
		for _, attr := range a.AttributeStatement.Attributes {
			for _, v := range attr.Values {
				out.Attributes[attr.Name] = append(out.Attributes[attr.Name], strings.TrimSpace(v.Value))
			}
		}
	}
	if len(out.Attributes["openstack_user"]) == 0 {
		return nil, refuse("no openstack_user attribute")
	}
	return out, nil
}
