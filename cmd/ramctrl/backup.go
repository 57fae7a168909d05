package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ramd-project/ramd/api/client"
)

const backupUsage = `usage: ramctrl backup create [--type full|diff|incr] [--no-wait] [--timeout 6h]
       ramctrl backup list | show ID | jobs
       ramctrl backup check | expire [--no-wait]
       ramctrl backup restore --confirm CLUSTER [--backup ID] [--target-time RFC3339 | --target-lsn LSN |
               --target-xid XID | --target-name NAME | --target-immediate] [--exclusive] [--no-wait]
       ramctrl backup schedule [list]
       ramctrl backup schedule set TYPE 'CRON' | suspend TYPE | resume TYPE | remove TYPE | run TYPE`

// runBackup: ramctrl backup create|list|show|jobs|check|expire|schedule.
func runBackup(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, backupUsage)
		return exitUsage
	}
	sub := args[0]
	o := newOptions("backup "+sub, stderr, "table")
	stdout = o.bind(stdout)
	typ := o.fs.String("type", "full", "create: full, diff or incr (Barman: full only)")
	noWait := o.fs.Bool("no-wait", false, "create, check, expire: print the job id and return instead of following the job")
	timeout := o.fs.Duration("timeout", 6*time.Hour, "create, check, expire, restore: how long to follow the job")
	var rf restoreFlags
	o.fs.StringVar(&rf.backup, "backup", "", "restore: the backup id (default: the latest that reaches the target)")
	o.fs.StringVar(&rf.time, "target-time", "", "restore: recover to this time (RFC 3339)")
	o.fs.StringVar(&rf.lsn, "target-lsn", "", "restore: recover to this LSN")
	o.fs.StringVar(&rf.xid, "target-xid", "", "restore: recover to this transaction id")
	o.fs.StringVar(&rf.name, "target-name", "", "restore: recover to this named restore point")
	o.fs.BoolVar(&rf.immediate, "target-immediate", false, "restore: stop as soon as the backup is consistent")
	o.fs.BoolVar(&rf.exclusive, "exclusive", false, "restore: stop just before the target instead of just after it")
	o.fs.StringVar(&rf.confirm, "confirm", "", "restore: the cluster's name, to confirm that every member's data is replaced")
	rest, flags := splitArgs(args[1:], func(a string) bool {
		switch strings.TrimLeft(a, "-") {
		case "no-wait", "h", "help", "target-immediate", "exclusive":
			return true
		}
		return false
	})
	if code, ok := o.parse(flags); !ok {
		return code
	}
	valid := false
	switch sub {
	case "create", "list", "jobs", "check", "expire", "restore":
		valid = len(rest) == 0
	case "show":
		valid = len(rest) == 1
	case "schedule", "schedules":
		valid = len(rest) == 0 || (len(rest) == 1 && rest[0] == "list") || (len(rest) == 3 && rest[0] == "set") ||
			(len(rest) == 2 && strings.Contains(" suspend resume remove run ", " "+rest[0]+" "))
	}
	if !valid {
		fmt.Fprintln(stderr, backupUsage)
		return exitUsage
	}
	c, code, ok := o.client(ctx, envAPI)
	if !ok {
		return code
	}
	jobDone := func(a client.JobAccepted, err error) int {
		if err != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n", err)
			return exitError
		}
		if *noWait || o.json() {
			if o.json() {
				_ = writeJSON(stdout, a)
			} else {
				fmt.Fprintf(stdout, "job %s queued: ramctrl backup jobs, or GET %s\n", a.JobID, a.JobURL)
			}
			return exitOK
		}
		fmt.Fprintf(stdout, "job %s queued\n", a.JobID)
		return follow(ctx, c, a.JobID, *timeout, stdout, stderr)
	}
	var err error
	switch sub {
	case "restore":
		req, rerr := rf.request()
		if rerr != nil {
			fmt.Fprintf(stderr, "ramctrl: %v\n%s\n", rerr, backupUsage)
			return exitUsage
		}
		return jobDone(c.StartRestore(ctx, req))
	case "create":
		return jobDone(c.StartBackup(ctx, *typ))
	case "check", "expire":
		return jobDone(c.StartBackupTask(ctx, sub))
	case "list":
		err = backupList(ctx, c, o, stdout)
	case "show":
		err = backupShow(ctx, c, o, rest[0], stdout)
	case "jobs":
		err = backupJobs(ctx, c, o, stdout)
	default:
		if len(rest) == 2 && rest[0] == "run" {
			return jobDone(c.RunSchedule(ctx, rest[1]))
		}
		err = backupSchedule(ctx, c, o, rest, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	return exitOK
}

// humanBytes prints a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func backupList(ctx context.Context, c *client.Client, o *options, w io.Writer) error {
	l, err := c.Backups(ctx)
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, l)
		}
		return err
	}
	now := time.Now()
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintf(tw, "ID\tTYPE\tSTATUS\tSTOPPED\tDURATION\tSIZE\tREPO SIZE\tWAL\tJOB\n")
	for _, b := range l.Backups {
		took := "-"
		if !b.Stop.IsZero() {
			took = b.Stop.Sub(b.Start).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s..%s\t%s\n", b.ID, b.Type, b.Status, ago(b.Stop, now), took,
			humanBytes(b.Size), humanBytes(b.RepoSize), b.WALStart, b.WALStop, b.JobID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s: %d backups; last good %s; recoverable from %s; archive %s..%s\n", l.Tool, len(l.Backups),
		ago(l.LastSuccess, now), fmtTime(l.FirstRecoverability), l.WALMin, l.WALMax)
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func backupShow(ctx context.Context, c *client.Client, o *options, id string, w io.Writer) error {
	b, err := c.Backup(ctx, id)
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, b)
		}
		return err
	}
	tw := newTable(w, 2, 4, 2)
	for _, kv := range [][2]string{{"id", b.ID}, {"type", b.Type}, {"status", b.Status}, {"started", fmtTime(b.Start)},
		{"stopped", fmtTime(b.Stop)}, {"lsn", b.StartLSN + " .. " + b.StopLSN}, {"wal", b.WALStart + " .. " + b.WALStop},
		{"size", humanBytes(b.Size)}, {"repository size", humanBytes(b.RepoSize)}, {"prior", b.Prior}, {"job", b.JobID},
		{"retention", b.Retention}} {
		if kv[1] != "" && kv[1] != " .. " {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	return tw.Flush()
}

func backupJobs(ctx context.Context, c *client.Client, o *options, w io.Writer) error {
	js, err := c.BackupJobs(ctx)
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, js)
		}
		return err
	}
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintf(tw, "ID\tKIND\tTYPE\tSTATE\tNODE\tCREATED\tLABEL\tERROR\n")
	for _, j := range js {
		typ, label := "", ""
		if j.Backup != nil {
			typ, label = j.Backup.Type, j.Backup.Label
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Kind, typ, j.State, j.Node,
			j.CreatedAt.Local().Format("2006-01-02 15:04:05"), label, j.Error)
	}
	return tw.Flush()
}

func backupSchedule(ctx context.Context, c *client.Client, o *options, rest []string, w io.Writer) error {
	var vs []client.BackupSchedule
	var err error
	switch {
	case len(rest) == 0 || rest[0] == "list":
		vs, err = c.BackupSchedules(ctx)
	case rest[0] == "set":
		vs, err = c.ChangeSchedule(ctx, client.ScheduleChange{Type: rest[1], Cron: rest[2]})
	case rest[0] == "remove":
		vs, err = c.ChangeSchedule(ctx, client.ScheduleChange{Type: rest[1], Remove: true})
	default:
		suspend := rest[0] == "suspend"
		vs, err = c.ChangeSchedule(ctx, client.ScheduleChange{Type: rest[1], Suspend: &suspend})
	}
	if err != nil || o.json() {
		if err == nil {
			err = writeJSON(w, vs)
		}
		return err
	}
	tw := newTable(w, 2, 4, 2)
	fmt.Fprintf(tw, "TYPE\tCRON\tSUSPENDED\tLAST TICK\tNEXT TICK\n")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Type, v.Cron, yesNo(v.Suspended), fmtTime(v.LastTick), fmtTime(v.NextTick))
	}
	return tw.Flush()
}

// restoreFlags are the flags of ramctrl backup restore.
type restoreFlags struct {
	backup, time, lsn, xid, name, confirm string
	immediate, exclusive                  bool
}

// request turns the flags into the API's request: at most one target.
func (f restoreFlags) request() (client.RestoreRequest, error) {
	r := client.RestoreRequest{BackupID: f.backup, Confirm: f.confirm}
	var targets []client.RestoreTarget
	for _, t := range []client.RestoreTarget{{Type: "time", Value: f.time}, {Type: "lsn", Value: f.lsn},
		{Type: "xid", Value: f.xid}, {Type: "name", Value: f.name}} {
		if t.Value != "" {
			targets = append(targets, t)
		}
	}
	if f.immediate {
		targets = append(targets, client.RestoreTarget{Type: "immediate"})
	}
	switch {
	case len(targets) > 1:
		return r, fmt.Errorf("give one target, not %d", len(targets))
	case len(targets) == 1:
		t := targets[0]
		t.Exclusive = f.exclusive
		r.Target = &t
	case f.exclusive:
		return r, fmt.Errorf("--exclusive needs a target")
	}
	if f.confirm == "" {
		return r, fmt.Errorf("--confirm CLUSTER is required: every member's data is replaced")
	}
	return r, nil
}
