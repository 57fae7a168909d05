package proc

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	t.Parallel()
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 4242 0 0"
	tests := []struct {
		name string
		line string
		want Stat
		err  bool
	}{
		{"postmaster", "123 (postgres) S 1 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10", Stat{PID: 123, Comm: "postgres", State: 'S', PPID: 1, StartTime: "98765"}, false},
		{"comm with spaces and parentheses", "77 (a (b) c) Z 5" + tail, Stat{PID: 77, Comm: "a (b) c", State: 'Z', PPID: 5, StartTime: "4242"}, false},
		{"cpu times", "9 (ramd) S 1 9 9 0 -1 4194560 10 0 0 0 250 75 0 0 20 0 8 0 5555 1000 10", Stat{PID: 9, Comm: "ramd", State: 'S', PPID: 1, StartTime: "5555", UTime: 250, STime: 75}, false},
		{"short", "1 (x) S 0 1 2", Stat{}, true},
		{"no parentheses", "1 x S 0" + tail, Stat{}, true},
		{"bad pid", "x (y) S 0" + tail, Stat{}, true},
		{"bad ppid", "1 (y) S z" + tail, Stat{}, true},
		{"empty", "", Stat{}, true},
	}
	for _, tt := range tests {
		got, err := ParseStat([]byte(tt.line))
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.err)
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want Memory
		err  bool
	}{
		{"all three", "Name:\tramd\nVmRSS:\t   30080 kB\nRssAnon:\t    7124 kB\nRssFile:\t   22956 kB\nRssShmem:\t       0 kB\n",
			Memory{RSS: 30080 << 10, Anon: 7124 << 10, File: 22956 << 10}, false},
		{"old kernel without the parts", "VmRSS:\t 100 kB\n", Memory{RSS: 100 << 10}, false},
		{"kernel thread", "Name:\tkthreadd\nState:\tS (sleeping)\n", Memory{}, true},
		{"not kB", "VmRSS:\t 100 MB\n", Memory{}, true},
		{"not a number", "VmRSS:\t x kB\n", Memory{}, true},
		{"negative", "VmRSS:\t 1 kB\nRssAnon:\t -5 kB\n", Memory{}, true},
		{"empty", "", Memory{}, true},
	}
	for _, tt := range tests {
		got, err := ParseMemory([]byte(tt.text))
		if (err != nil) != tt.err || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.err)
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMemoryOfThisProcess(t *testing.T) {
	t.Parallel()
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS < 1<<20 || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS {
		t.Fatalf("memory of the test process: %+v (%v)", m, err)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("123 (postgres) S 1 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10"))
	f.Add([]byte("1 ()) ) S 1" + strings.Repeat(" 0", 20)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := ParseStat(b); err == nil && (st.StartTime == "" || st.State == 0) {
			t.Fatalf("accepted %q as %+v", b, st)
		}
	})
}

// The real /proc: this process's own stat, and a child found by Children and killed with
// its own child by KillPostmaster.
func TestProcOnThisHost(t *testing.T) {
	t.Parallel()
	if !Mounted() {
		t.Skip("no /proc")
	}
	me, err := ReadStat(os.Getpid())
	if err != nil || me.PID != os.Getpid() || me.StartTime == "" {
		t.Fatalf("ReadStat(self) = %+v, %v", me, err)
	}
	cmd := exec.Command("sh", "-c", "sleep 60 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var grand []int
	for i := 0; i < 100 && len(grand) == 0; i++ {
		grand = Children(cmd.Process.Pid)
		time.Sleep(20 * time.Millisecond)
	}
	if len(grand) != 1 || !slices.Contains(Children(os.Getpid()), cmd.Process.Pid) {
		t.Fatalf("children of the shell %v, of the test %v", grand, Children(os.Getpid()))
	}
	KillPostmaster(cmd.Process.Pid)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the shell survived KillPostmaster")
	}
	for i := 0; i < 100; i++ {
		if st, err := ReadStat(grand[0]); err != nil || st.State == 'Z' {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the shell's child %d survived KillPostmaster", grand[0])
}
