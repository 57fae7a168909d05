package fence

import "github.com/ramd-project/ramd/daemon/proc"

// KillPostmaster kills a postmaster and every process it forked (proc.KillPostmaster).
func KillPostmaster(pid int) { proc.KillPostmaster(pid) }
