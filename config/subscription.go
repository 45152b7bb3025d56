package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pmd-dev/pmd"
	"github.com/pmd-dev/pmd/internal/redact"
	"github.com/pmd-dev/pmd/pm"
	"gopkg.in/yaml.v3"
)

// Subscription is one subscription of the config file: the events of one filter
// (Types, Stream or Category, exactly one set), POSTed to a webhook at least once and
// in log order, from a position the store keeps.
type Subscription struct {
	// Name names the subscription and its stream "<Name>.subscription"; the rule of
	// process manager names, and not the name of one of them.
	Name     string
	Types    []string
	Stream   string
	Category string
	// Deliver says where the events go, and how many failures in a row park one.
	Deliver Deliver
	// Line is where the subscription is defined in the file.
	Line int
}

// Filter is the subscription's filter, for pm.NewSubscription.
func (s Subscription) Filter() pm.Filter {
	return pm.Filter{Types: slices.Clone(s.Types), Stream: s.Stream, Category: s.Category}
}

// Options are the subscription's options for pm.NewSubscription, without the handler.
// The receiver is the webhook URL with its credentials masked (redact.URL): the
// subscription logs it and passes it to OnAttempt; only the handler dials Deliver.Webhook.
func (s Subscription) Options() pm.SubscriptionOptions {
	return pm.SubscriptionOptions{MaxAttempts: s.Deliver.MaxAttempts, Receiver: redact.URL(s.Deliver.Webhook)}
}

// Describe says what the subscription follows, as the config file says it.
func (s Subscription) Describe() string {
	switch {
	case s.Stream != "":
		return "stream " + s.Stream
	case s.Category != "":
		return "category " + s.Category
	default:
		return "types " + strings.Join(s.Types, ", ")
	}
}

// subscriptions reads the subscriptions list; their names must differ from each other
// and from the process managers'.
func (p *parser) subscriptions(list *yaml.Node, procs []Process) []Subscription {
	if list.Kind != yaml.SequenceNode {
		p.errorf(list, "subscriptions must be a list of subscriptions, got %s", kindName(list))
		return nil
	}
	var out []Subscription
	var nodes []*yaml.Node
	names := map[string]int{}
	for _, pc := range procs {
		names[pc.Name] = -pc.Line
	}
	for i, n := range list.Content {
		sub, ok := p.subscription(i, n)
		if !ok {
			continue
		}
		if line, dup := names[sub.Name]; dup {
			if line < 0 {
				p.errorf(n, "subscription %q has the name of the process manager at line %d; give it another", sub.Name, -line)
			} else {
				p.errorf(n, "subscription %q is defined twice (first at line %d)", sub.Name, line)
			}
			continue
		}
		names[sub.Name] = sub.Line
		out = append(out, sub)
		nodes = append(nodes, n)
	}
	p.followCycles(out, nodes)
	return out
}

// followCycles refuses subscriptions that follow each other's position streams in a
// circle (a follows b.subscription, b follows a.subscription): each position one writes
// is delivered to the next, which writes one of its own, so that a single event there
// starts writes and webhook calls that never end. A subscription following its own is
// refused where it is read; nodes are the subscriptions' own, for the lines.
func (p *parser) followCycles(subs []Subscription, nodes []*yaml.Node) {
	byStream := map[string]int{}
	for i, s := range subs {
		byStream[pm.SubscriptionStream(s.Name)] = i
	}
	// A subscription follows at most one other (its stream or category, a stream
	// without $ being its own category): walk from each not yet seen until the chain
	// ends, reaches one seen by an earlier walk, or comes back into itself, each
	// subscription walked once.
	next := func(i int) (int, bool) {
		j, ok := byStream[subs[i].Stream+subs[i].Category]
		return j, ok && j != i
	}
	const walking, walked = 1, 2
	state := make([]int, len(subs))
	for i := range subs {
		var path []int
		j, ok := i, true
		for ; ok && state[j] == 0; j, ok = next(j) {
			state[j] = walking
			path = append(path, j)
		}
		if ok && state[j] == walking { // back into this walk: a circle from j
			circle := path[slices.Index(path, j):]
			var names []string
			for _, k := range append(circle[1:], j) {
				names = append(names, strconv.Quote(subs[k].Name))
			}
			p.errorf(nodes[j], "subscription %q follows the position records of %s: each position one writes would be delivered to the next, for ever; follow the events they deliver instead",
				subs[j].Name, strings.Join(names, ", which follows those of "))
		}
		for _, k := range path {
			state[k] = walked
		}
	}
}

func (p *parser) subscription(i int, n *yaml.Node) (Subscription, bool) {
	what := fmt.Sprintf("subscription %d", i+1)
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode {
				what = fmt.Sprintf("subscription %q", n.Content[j+1].Value)
			}
		}
	}
	before := len(p.errs)
	m := p.mapping(n, what, []string{"name", "deliver"}, "name", "types", "stream", "category", "deliver")
	sub := Subscription{Line: n.Line}
	if v, ok := m["name"]; ok {
		if s, ok := p.str(v, what+": name"); ok {
			if reason := checkManagerName(s); reason != "" {
				p.errorf(v, "%s: name %s", what, reason)
			}
			sub.Name = s
		}
	}
	filters := 0
	if v, ok := m["types"]; ok {
		filters++
		sub.Types = p.types(v, what+": types", "the subscription would never deliver an event")
		for i, e := range v.Content {
			// The type of the position records of every subscription (pm/FORMAT.md),
			// its own included.
			if e.Value == "SubscriptionPosition" {
				p.errorf(e, "%s: types[%d] %q is the type of the subscription's own position records: each it writes would be delivered, for ever", what, i, e.Value)
			}
		}
	}
	if v, ok := m["stream"]; ok {
		filters++
		if s, ok := p.str(v, what+": stream"); ok {
			switch {
			case checkType(s) != "":
				p.errorf(v, "%s: stream %s", what, checkType(s))
			case strings.HasPrefix(s, "$"):
				p.errorf(v, "%s: stream %q is the store's own; to follow the global log, give types", what, s)
			case s == pm.SubscriptionStream(sub.Name):
				p.errorf(v, "%s: stream %q is the subscription's own: each position it writes there would be delivered, for ever", what, s)
			}
			sub.Stream = s
		}
	}
	if v, ok := m["category"]; ok {
		filters++
		if s, ok := p.str(v, what+": category"); ok {
			if err := pmd.CheckCategory(s); err != nil {
				p.errorf(v, "%s: category %v", what, err)
			} else if s == pm.SubscriptionStream(sub.Name) {
				// A stream name without a $ is its own category.
				p.errorf(v, "%s: category %q holds the subscription's own stream: each position it writes there would be delivered, for ever", what, s)
			}
			sub.Category = s
		}
	}
	if filters != 1 && n.Kind == yaml.MappingNode {
		p.errorf(n, "%s: give exactly one of types, stream and category (it has %d)", what, filters)
	}
	if v, ok := m["deliver"]; ok {
		if d := p.deliver(v, what+": deliver", false); d != nil {
			sub.Deliver = *d
		}
	}
	return sub, len(p.errs) == before
}
