package main

import (
	"github.com/pmd-dev/pmd/config"
	"github.com/pmd-dev/pmd/pm"
)

// streamOwner is what server.Tokens.SetOwner takes for the process managers and subscriptions of
// cfg (nil: none): it names the one that owns a stream, whose changes then need an
// admin token. Every node of a cluster runs it, followers included, as they authorize
// a request before forwarding it to the leader.
func streamOwner(cfg *config.Config) func(stream string) (string, bool) {
	if cfg == nil {
		return nil
	}
	var managers, subscriptions []string
	for _, p := range cfg.Processes {
		managers = append(managers, p.Name)
	}
	for _, s := range cfg.Subscriptions {
		subscriptions = append(subscriptions, s.Name)
	}
	owners := pm.NewOwners(managers, subscriptions)
	return func(stream string) (string, bool) {
		kind, name, ok := owners.Owner(stream)
		if !ok {
			return "", false
		}
		return kind + " " + name, true
	}
}

// keepsAll is what server.Options.KeepsAll takes for the process managers of cfg (nil:
// none): it names the manager that decides on every record of a stream, whose
// retention settings the daemon then refuses.
func keepsAll(cfg *config.Config) func(stream string) (string, bool) {
	if cfg == nil || len(cfg.Processes) == 0 {
		return nil
	}
	var managers []string
	for _, p := range cfg.Processes {
		managers = append(managers, p.Name)
	}
	return pm.NewOwners(managers, nil).KeepsAll
}
