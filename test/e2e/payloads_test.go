//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/PagerDuty/go-pagerduty"
	"github.com/opsgenie/opsgenie-go-sdk-v2/alert"
	"github.com/prometheus/alertmanager/notify/webhook"
	"github.com/slack-go/slack"
)

// The notifiers' requests are decoded with the receiving services' own published types
// (Alertmanager's webhook.Message, go-pagerduty's V2Event, slack-go's WebhookMessage, the
// Opsgenie SDK's create and close requests), strictly: a field the type does not know is an
// error, and so is a required field left out.

// decodeStrict decodes one JSON value into v, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkWebhook: Alertmanager's webhook, version 4, with a group key and alerts that have labels
// and a start.
func checkWebhook(m webhook.Message) error {
	switch {
	case m.Data == nil:
		return errors.New("webhook: no data")
	case m.Version != "4":
		return fmt.Errorf("webhook: version %q, want 4", m.Version)
	case m.GroupKey == "" || m.Receiver == "":
		return errors.New("webhook: groupKey and receiver are required")
	case m.Status != "firing" && m.Status != "resolved":
		return fmt.Errorf("webhook: status %q", m.Status)
	case len(m.Alerts) == 0:
		return errors.New("webhook: no alerts")
	}
	for _, a := range m.Alerts {
		if a.Labels["alertname"] == "" || a.StartsAt.IsZero() || a.Fingerprint == "" {
			return fmt.Errorf("webhook: alert without alertname, startsAt or fingerprint: %+v", a)
		}
	}
	return nil
}

// checkPagerDuty: an Events API v2 event. Every event has a routing key, an action and (to
// resolve what was triggered) a dedup key; a trigger has a payload with summary (at most 1024
// characters), source and one of the four severities.
func checkPagerDuty(body []byte) (pagerduty.V2Event, error) {
	var e pagerduty.V2Event
	if err := decodeStrict(body, &e); err != nil {
		return e, fmt.Errorf("pagerduty: %w", err)
	}
	switch {
	case e.RoutingKey == "":
		return e, errors.New("pagerduty: routing_key is required")
	case e.DedupKey == "":
		return e, errors.New("pagerduty: dedup_key is required to resolve")
	case e.Action != "trigger" && e.Action != "acknowledge" && e.Action != "resolve":
		return e, fmt.Errorf("pagerduty: event_action %q", e.Action)
	}
	if e.Action != "trigger" {
		return e, nil
	}
	p := e.Payload
	switch {
	case p == nil:
		return e, errors.New("pagerduty: a trigger needs a payload")
	case p.Summary == "" || len(p.Summary) > 1024:
		return e, fmt.Errorf("pagerduty: summary of %d bytes, want 1 to 1024", len(p.Summary))
	case p.Source == "":
		return e, errors.New("pagerduty: payload.source is required")
	case p.Severity != "critical" && p.Severity != "error" && p.Severity != "warning" && p.Severity != "info":
		return e, fmt.Errorf("pagerduty: severity %q", p.Severity)
	}
	return e, nil
}

// checkSlack: an incoming-webhook message with text or attachments, each attachment with the
// fallback text Slack shows where attachments are not rendered.
func checkSlack(body []byte) (slack.WebhookMessage, error) {
	var m slack.WebhookMessage
	if err := decodeStrict(body, &m); err != nil {
		return m, fmt.Errorf("slack: %w", err)
	}
	if m.Text == "" && len(m.Attachments) == 0 && m.Blocks == nil {
		return m, errors.New("slack: no text, attachments or blocks")
	}
	for _, a := range m.Attachments {
		if a.Fallback == "" {
			return m, errors.New("slack: attachment without fallback")
		}
	}
	return m, nil
}

// checkOpsgenie: a create (POST /v2/alerts) or a close by alias
// (POST /v2/alerts/{alias}/close?identifierType=alias), validated by the SDK itself.
func checkOpsgenie(path, query string, body []byte) (create *alert.CreateAlertRequest, closed *alert.CloseAlertRequest, err error) {
	q, _ := url.ParseQuery(query)
	rest, ok := strings.CutPrefix(path, "/opsgenie/v2/alerts")
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("opsgenie: path %s", path)
	case rest == "":
		create = &alert.CreateAlertRequest{}
		if err := decodeStrict(body, create); err != nil {
			return nil, nil, fmt.Errorf("opsgenie create: %w", err)
		}
		if err := create.Validate(); err != nil {
			return nil, nil, fmt.Errorf("opsgenie create: %w", err)
		}
		if len(create.Message) > 130 {
			return nil, nil, fmt.Errorf("opsgenie create: message of %d characters, the API takes 130", len(create.Message))
		}
		if create.Alias == "" {
			return nil, nil, errors.New("opsgenie create: no alias to close it by")
		}
		return create, nil, nil
	case strings.HasSuffix(rest, "/close"):
		closed = &alert.CloseAlertRequest{IdentifierType: alert.ALIAS, IdentifierValue: strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/close")}
		if q.Get("identifierType") != "alias" {
			return nil, nil, fmt.Errorf("opsgenie close: identifierType %q, want alias", q.Get("identifierType"))
		}
		if err := decodeStrict(body, closed); err != nil {
			return nil, nil, fmt.Errorf("opsgenie close: %w", err)
		}
		if err := closed.Validate(); err != nil {
			return nil, nil, fmt.Errorf("opsgenie close: %w", err)
		}
		return nil, closed, nil
	}
	return nil, nil, fmt.Errorf("opsgenie: path %s", path)
}
