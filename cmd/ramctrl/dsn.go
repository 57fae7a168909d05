package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/ramd-project/ramd/api/client"
)

// Roles --role picks a member by, as patronictl names them.
const (
	pickLeader  = "leader"
	pickPrimary = "primary"
	pickReplica = "replica"
	pickSync    = "sync"
	pickAny     = "any"
)

// pickMember chooses the member a dsn or query is for: the one named member, else the first
// by name with the role (leader or primary: the leader; replica: a member that is not the
// leader, a streaming one first; sync: a synchronous or quorum standby; any: the leader,
// else any member with an address).
func pickMember(cl client.Cluster, member, role string) (client.Member, error) {
	members := append([]client.Member(nil), cl.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	if member != "" {
		for _, m := range members {
			if m.Name == member {
				if m.Host == "" {
					return m, fmt.Errorf("member %s published no address (state %s)", m.Name, dash(m.State))
				}
				return m, nil
			}
		}
		return client.Member{}, fmt.Errorf("no member %q in the cluster", member)
	}
	match := func(m client.Member) bool {
		switch role {
		case pickLeader, pickPrimary:
			return m.IsLeader()
		case pickReplica:
			return !m.IsLeader()
		case pickSync:
			return m.Role == client.RoleSyncStandby || m.Role == client.RoleQuorumStandby
		}
		return true
	}
	for _, m := range members {
		preferred := (role == pickAny && m.IsLeader()) || (role == pickReplica && !m.IsLeader() && m.ReplicationState == "streaming")
		if preferred && m.Host != "" {
			return m, nil
		}
	}
	for _, m := range members {
		if match(m) && m.Host != "" {
			return m, nil
		}
	}
	return client.Member{}, fmt.Errorf("no member with role %s and an address in the cluster", role)
}

// validRole checks --role.
func validRole(r string) bool {
	switch r {
	case pickLeader, pickPrimary, pickReplica, pickSync, pickAny:
		return true
	}
	return false
}

// dsn is the libpq connection string of m: host and port, as patronictl prints it.
func dsn(m client.Member) string {
	s := "host=" + m.Host
	if m.Port != 0 {
		s += " port=" + strconv.Itoa(m.Port)
	}
	return s
}

// runDSN: ramctrl dsn [--role leader|replica|sync|any] [--member NAME]. It prints the
// connection string of the chosen member.
func runDSN(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	o := newOptions("dsn", stderr, "")
	role := o.fs.String("role", pickLeader, "leader (primary), replica, sync or any")
	o.fs.StringVar(role, "r", pickLeader, "short for --role")
	member := o.fs.String("member", "", "the member (instead of --role)")
	o.fs.StringVar(member, "m", "", "short for --member")
	c, code, ok := o.connect(ctx, args, envAPI)
	if !ok {
		return code
	}
	if !validRole(*role) {
		fmt.Fprintf(stderr, "ramctrl dsn: --role must be leader, primary, replica, sync or any, not %q\n", *role)
		return exitUsage
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		return report(stderr, err)
	}
	m, err := pickMember(cl, *member, *role)
	if err != nil {
		return report(stderr, err)
	}
	fmt.Fprintln(stdout, dsn(m))
	return exitOK
}

// runQuery: ramctrl query [--role R | --member NAME] [-d DB] [-U USER] (-c SQL | --file F).
// It runs the SQL on the chosen member with psql (ramctrl speaks only to ramd's API; the
// database protocol is psql's), so psql's password prompt, ~/.pgpass, PGPASSWORD and
// PGSSLMODE apply. --output tsv prints unaligned tab-separated rows without the footer.
func runQuery(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	o := newOptions("query", stderr, "table")
	stdout = o.bind(stdout)
	role := o.fs.String("role", pickLeader, "leader (primary), replica, sync or any")
	o.fs.StringVar(role, "r", pickLeader, "short for --role")
	member := o.fs.String("member", "", "the member (instead of --role)")
	o.fs.StringVar(member, "m", "", "short for --member")
	db := o.fs.String("dbname", "postgres", "database")
	o.fs.StringVar(db, "d", "postgres", "short for --dbname")
	user := o.fs.String("username", "", "database user (default: psql's, $PGUSER or the OS user)")
	o.fs.StringVar(user, "U", "", "short for --username")
	command := o.fs.String("command", "", "the SQL to run")
	o.fs.StringVar(command, "c", "", "short for --command")
	file := o.fs.String("file", "", "a file of SQL to run")
	psql := o.fs.String("psql", "psql", "the psql program")
	c, code, ok := o.connect(ctx, args, envAPI)
	if !ok {
		return code
	}
	switch {
	case !validRole(*role):
		fmt.Fprintf(stderr, "ramctrl query: --role must be leader, primary, replica, sync or any, not %q\n", *role)
		return exitUsage
	case (*command == "") == (*file == ""):
		fmt.Fprintln(stderr, "ramctrl query: give the SQL with --command or --file (one of them)")
		return exitUsage
	case o.json():
		fmt.Fprintln(stderr, "ramctrl query: --output must be table or tsv (psql prints the rows)")
		return exitUsage
	}
	cl, err := c.Cluster(ctx)
	if err != nil {
		return report(stderr, err)
	}
	m, err := pickMember(cl, *member, *role)
	if err != nil {
		return report(stderr, err)
	}
	conn := dsn(m) + " dbname=" + quoteConn(*db)
	if *user != "" {
		conn += " user=" + quoteConn(*user)
	}
	psqlArgs := []string{"--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--dbname", conn}
	if tsv(stdout) {
		psqlArgs = append(psqlArgs, "--no-align", "--field-separator=\t", "--pset", "footer=off")
	}
	if *command != "" {
		psqlArgs = append(psqlArgs, "--command", *command)
	} else {
		psqlArgs = append(psqlArgs, "--file", *file)
	}
	cmd := exec.CommandContext(ctx, *psql, psqlArgs...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, unwrap(stdout), stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return exitError
	case err != nil:
		return report(stderr, fmt.Errorf("run %s: %w", *psql, err))
	}
	return exitOK
}

// quoteConn quotes a libpq connection-string value when it needs it.
func quoteConn(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
