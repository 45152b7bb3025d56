package main

import (
	"fmt"

	"github.com/pmd-dev/pmd"
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

// keepProcessStreams has store keep whole the streams of the process managers of cfg
// (nil: none) whose records they decide on (pm.Keep), so that the store refuses
// retention settings hiding them. pmd serve calls it at start, on every node of a
// cluster: a cluster's managers are made on its leader only, once it is elected, and
// pm.New keeps them again then.
func keepProcessStreams(store *pmd.Store, cfg *config.Config) error {
	if cfg == nil {
		return nil
	}
	for _, p := range cfg.Processes {
		if err := pm.Keep(store, p.Name); err != nil {
			return fmt.Errorf("%s:%d: process manager %s: %w", cfg.Path, p.Line, p.Name, err)
		}
	}
	return nil
}
