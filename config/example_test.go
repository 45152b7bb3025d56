package config_test

import (
	"fmt"

	"github.com/pmd-dev/pmd/config"
)

func ExampleParse() {
	cfg, err := config.Parse("pmd.yaml", []byte(`
processes:
  - name: CateringMatch
    correlate_by: order_id
    handles: [CustomerConfirmedMenu, CatererConfirmedMenu]
    complete_when: seen.CustomerConfirmedMenu > 0 && seen.CatererConfirmedMenu > 0
    issue: {type: ConfirmOrder}
    deadline: {after: 48h, issue: {type: CancelOrder}}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := cfg.Processes[0]
	fmt.Println(p.Name, p.Handles, p.Issues[0].Type, p.Deadline.After)

	// Every problem of a file is reported, with its line and column.
	_, err = config.Parse("pmd.yaml", []byte(`
processes:
  - name: Catering Match
    handles: [CustomerConfirmedMenu]
    issue: {type: ConfirmOrder}
    deadline: {after: soon, issue: {type: CancelOrder}}
`))
	fmt.Println(err)
	// Output:
	// CateringMatch [CustomerConfirmedMenu CatererConfirmedMenu] ConfirmOrder 48h0m0s
	// pmd.yaml:3:5: process manager "Catering Match": correlate_by is missing
	// pmd.yaml:3:11: process manager "Catering Match": name "Catering Match" contains ' '; only letters, digits, '_' and '-' are allowed
	// pmd.yaml:6:23: process manager "Catering Match": deadline: after: "soon" is not a duration; write it like 48h, 90m or 30s
}
