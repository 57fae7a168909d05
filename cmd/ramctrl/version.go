package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/ramd-project/ramd/api/client"
)

// memberVersion is what one member says about itself in GET /patroni.
type memberVersion struct {
	Name       string `json:"name"`
	Ramd       string `json:"ramd,omitempty"`
	PostgreSQL string `json:"postgresql,omitempty"`
	Error      string `json:"error,omitempty"`
}

// versions is the JSON document of ramctrl version --output json.
type versions struct {
	Ramctrl string          `json:"ramctrl"`
	Members []memberVersion `json:"members,omitempty"`
}

// runVersion: ramctrl version [--client] [--output table|json]. It prints ramctrl's version,
// then every member's ramd and PostgreSQL versions; a member that does not answer is listed
// with the reason and makes the exit code 1.
func runVersion(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	o := newOptions("version", stderr, "table")
	stdout = o.bind(stdout)
	clientOnly := o.fs.Bool("client", false, "print only ramctrl's own version")
	if code, ok := o.parse(args); !ok {
		return code
	}
	v := versions{Ramctrl: buildVersion()}
	code := exitOK
	if !*clientOnly {
		c, failed, ok := o.client(ctx, envAPI)
		if !ok {
			return failed
		}
		var err error
		if v.Members, err = memberVersions(ctx, c); err != nil {
			if !o.json() {
				fmt.Fprintln(stdout, "ramctrl", v.Ramctrl)
			}
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		for _, m := range v.Members {
			if m.Error != "" {
				code = exitError
			}
		}
	}
	if o.json() {
		if err := writeJSON(stdout, v); err != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		return code
	}
	fmt.Fprintln(stdout, "ramctrl", v.Ramctrl)
	for _, m := range v.Members {
		if m.Error != "" {
			fmt.Fprintf(stdout, "%s: unknown (%s)\n", m.Name, m.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s: ramd %s PostgreSQL %s\n", m.Name, m.Ramd, m.PostgreSQL)
	}
	return code
}

// memberVersions asks each member of /cluster for GET <api_url>/patroni.
func memberVersions(ctx context.Context, c *client.Client) ([]memberVersion, error) {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]memberVersion, 0, len(cl.Members))
	for _, m := range cl.Members {
		mv := memberVersion{Name: m.Name}
		if m.APIURL == "" {
			mv.Error = "no api_url"
			out = append(out, mv)
			continue
		}
		doc, err := c.At(m.BaseURL()).Status(ctx)
		var down *client.UnreachableError
		if errors.As(err, &down) && len(down.Errs) == 1 {
			err = down.Errs[0] // one member asked: its own error says it all
		}
		if err != nil {
			mv.Error = err.Error()
		} else {
			mv.Ramd, mv.PostgreSQL = dash(doc.Patroni.Version), serverVersion(doc.ServerVersion)
		}
		out = append(out, mv)
	}
	return out, nil
}

// serverVersion formats PostgreSQL's server_version_num: 150004 is 15.4, 90624 is 9.6.24;
// 0 (not running) is "-".
func serverVersion(v int) string {
	switch {
	case v <= 0:
		return "-"
	case v >= 100000:
		return strconv.Itoa(v/10000) + "." + strconv.Itoa(v%10000)
	default:
		return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
	}
}
