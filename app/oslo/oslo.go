// Package oslo decodes notifications as oslo.messaging puts them on the bus: the 2.0
// envelope ({"oslo.version": "2.0", "oslo.message": "<json string>"}) of the
// messagingv2 driver, or the bare 1.0 message of the messaging driver.
package oslo

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Notification is the inner message.
type Notification struct {
	MessageID   string          `json:"message_id"`
	PublisherID string          `json:"publisher_id"`
	EventType   string          `json:"event_type"`
	Priority    string          `json:"priority"`
	Payload     json.RawMessage `json:"payload"`
	Timestamp   string          `json:"timestamp"`
}

// ErrUndecodable is a message that is no notification; retrying it cannot help.
var ErrUndecodable = errors.New("undecodable notification")

// Decode reads a message body. As oslo.messaging does, the envelope is only unpacked
// when both of its keys are present.
func Decode(body []byte) (Notification, error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return Notification{}, fmt.Errorf("%w: not a JSON object: %v", ErrUndecodable, err)
	}
	inner := body
	if v, ok := outer["oslo.version"]; ok {
		if msg, ok := outer["oslo.message"]; ok {
			var version, s string
			if json.Unmarshal(v, &version) != nil || version != "2.0" {
				return Notification{}, fmt.Errorf("%w: oslo.version %s", ErrUndecodable, v)
			}
			if err := json.Unmarshal(msg, &s); err != nil {
				return Notification{}, fmt.Errorf("%w: oslo.message is not a string", ErrUndecodable)
			}
			inner = []byte(s)
		}
	}
	var n Notification
	if err := json.Unmarshal(inner, &n); err != nil {
		return Notification{}, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if n.EventType == "" {
		return n, fmt.Errorf("%w: no event_type", ErrUndecodable)
	}
	return n, nil
}

// Envelope wraps a notification as the messagingv2 driver sends it.
func Envelope(n Notification) []byte {
	inner, _ := json.Marshal(n)
	out, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(inner)})
	return out
}
