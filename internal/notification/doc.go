// Package notification is the notification subsystem: Alerts send Strata's
// own Kubernetes events to Providers (chat, generic webhooks, Alertmanager,
// commit statuses), and Receivers accept Alertmanager's notifications.
// Subpackages: event (the event schema, filters and templates: pure),
// deliver (one HTTP payload per provider type: no Kubernetes client),
// controller (the Provider, Alert and Receiver reconcilers). It knows
// nothing about how Syncs or compositions work; it reads their events.
package notification
