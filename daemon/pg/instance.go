package pg

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Instance controls one local PostgreSQL server (one data directory). Its methods are safe
// for concurrent use, but callers (the HA loop) are expected to serialise the actions.
type Instance struct {
	cfg    Config // resolved: defaults applied, BinDir and SocketDir set
	logger *slog.Logger

	cred *syscall.Credential // OS user's credentials when ramd runs as root, else nil
	uid  int                 // uid and gids of the user running PostgreSQL programs
	gids []int
	home string // OS user's home directory (root only)
	// osAccount is the name of the OS account that runs PostgreSQL (pg_ident.conf).
	osAccount string
	isRoot    bool

	defaultSocketDir bool // SocketDir was derived by New (Stop removes it when empty)

	op sync.Mutex // serialises Start and Stop

	mu    sync.Mutex // guards child
	child *child     // the postmaster we started or adopted, nil when none

	pwMu sync.Mutex // guards pw; the passwords change at rotation (RotatePasswords)
	pw   Passwords

	poolMu sync.Mutex    // guards pool
	pool   *pgxpool.Pool // ramd's connections to its own server (pool.go), nil until used
}

// New validates cfg, applies defaults and resolves what needs no data directory I/O:
// BinDir (must hold a postgres binary), the OS user's uid/gid when ramd runs as root, and
// the socket directory. The returned Instance starts nothing.
func New(cfg Config, logger *slog.Logger) (*Instance, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.SuperuserPassword == "" || cfg.ReplicationPassword == "" {
		// Validate allowed this only for a loopback-only cluster: its members share the
		// generated passwords of this host.
		su, rep, err := LoopbackPasswords()
		if err != nil {
			return nil, err
		}
		if cfg.SuperuserPassword == "" {
			cfg.SuperuserPassword = su
		}
		if cfg.ReplicationPassword == "" {
			cfg.ReplicationPassword = rep
		}
	}
	cfg.DataDir = filepath.Clean(cfg.DataDir)
	cfg.LogFile = filepath.Clean(cfg.LogFile)
	bin, err := resolveBinDir(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	cfg.BinDir = bin
	i := &Instance{logger: logger, isRoot: os.Geteuid() == 0, uid: os.Geteuid()}
	if i.isRoot {
		u, err := user.Lookup(cfg.OSUser)
		if err != nil {
			return nil, fmt.Errorf("%w: look up %q: %w", ErrOSUser, cfg.OSUser, err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil || uid == 0 {
			return nil, fmt.Errorf("%w: %q has uid %s gid %s", ErrOSUser, cfg.OSUser, u.Uid, u.Gid)
		}
		cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		i.gids = []int{int(gid)}
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.ParseUint(s, 10, 32); err == nil && g != gid {
					cred.Groups = append(cred.Groups, uint32(g))
					i.gids = append(i.gids, int(g))
				}
			}
		}
		i.cred, i.uid, i.home, i.osAccount = cred, int(uid), u.HomeDir, cfg.OSUser
	} else {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("%w: look up the current user: %w", ErrOSUser, err)
		}
		i.osAccount = u.Username
		i.gids = []int{os.Getegid()}
		if gs, err := os.Getgroups(); err == nil {
			i.gids = append(i.gids, gs...)
		}
	}
	if cfg.SocketDir == "" {
		cfg.SocketDir = defaultSocketDir(cfg.DataDir, cfg.Port)
		i.defaultSocketDir = true
	}
	cfg.SocketDir = filepath.Clean(cfg.SocketDir)
	i.pw = Passwords{Superuser: cfg.SuperuserPassword, Replication: cfg.ReplicationPassword}
	cfg.SuperuserPassword, cfg.ReplicationPassword = "", "" // i.pw holds them
	i.cfg = cfg
	return i, nil
}

// defaultSocketDir is a short directory under os.TempDir() unique to the data directory
// (PostgreSQL's own compiled-in default is /tmp as well), or SocketDirNone when that path
// would be too long for a unix socket.
func defaultSocketDir(dataDir string, port int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(dataDir))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("ramd-%08x", h.Sum32()))
	if len(socketPath(dir, port)) >= maxSocketPath {
		return SocketDirNone
	}
	return dir
}

// binPatterns are the distribution layouts searched for versioned server binaries.
var binPatterns = []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"}

// requiredBins are the programs ramd runs; BinDir must hold all of them.
var requiredBins = []string{"postgres", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata"}

// resolveBinDir returns dir when set (it must hold requiredBins). Otherwise it tries, in
// order, the directory of pg_ctl on PATH, that directory after resolving pg_ctl's
// symlinks (PATH often holds only a few links into the versioned directory), and the
// highest-versioned directory matching binPatterns, and returns the first that holds
// requiredBins.
func resolveBinDir(dir string) (string, error) {
	if dir != "" {
		if missing := missingBins(dir); len(missing) > 0 {
			return "", fmt.Errorf("%w: %s lacks %s", ErrBinariesNotFound, dir, strings.Join(missing, ", "))
		}
		return dir, nil
	}
	var candidates []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			candidates = append(candidates, filepath.Dir(abs))
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				candidates = append(candidates, filepath.Dir(real))
			}
		}
	}
	if d := highestVersionDir(); d != "" {
		candidates = append(candidates, d)
	}
	for _, c := range candidates {
		if len(missingBins(c)) == 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: no directory with %s among pg_ctl's on PATH and %s; set RAMD_PG_BIN_DIR",
		ErrBinariesNotFound, strings.Join(requiredBins, ", "), strings.Join(binPatterns, ", "))
}

// missingBins lists the requiredBins that are not executable files in dir.
func missingBins(dir string) []string {
	var missing []string
	for _, b := range requiredBins {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	return missing
}

func highestVersionDir() string {
	best, bestV := "", -1
	for _, pat := range binPatterns {
		matches, _ := filepath.Glob(pat)
		prefix := pat[:strings.Index(pat, "*")]
		for _, m := range matches {
			// The version is the path element matched by '*'.
			v, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(m, prefix), "/", 2)[0])
			if err == nil && v > bestV && len(missingBins(m)) == 0 {
				best, bestV = m, v
			}
		}
	}
	return best
}

// Config returns the resolved configuration: defaults applied, and BinDir, SocketDir,
// ConnectAddr and LogFile filled in.
func (i *Instance) Config() Config {
	c := i.cfg
	pw := i.passwords()
	c.SuperuserPassword, c.ReplicationPassword = pw.Superuser, pw.Replication
	return c
}

// DataDirState describes the data directory on disk.
type DataDirState struct {
	Exists       bool // the directory exists
	Empty        bool // it exists and holds no entries
	Initialized  bool // PG_VERSION is present
	MajorVersion int  // from PG_VERSION (e.g. 15), 0 when not initialized
}

// DataDirState inspects the data directory without starting anything.
func (i *Instance) DataDirState() (DataDirState, error) {
	var s DataDirState
	entries, err := os.ReadDir(i.cfg.DataDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return s, fmt.Errorf("read data directory: %w", err)
	}
	s.Exists = true
	s.Empty = len(entries) == 0
	b, err := os.ReadFile(filepath.Join(i.cfg.DataDir, "PG_VERSION"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return s, fmt.Errorf("read PG_VERSION: %w", err)
	}
	s.Initialized = true
	v := strings.TrimSpace(string(b))
	major, _, _ := strings.Cut(v, ".")
	if s.MajorVersion, err = strconv.Atoi(major); err != nil {
		return s, fmt.Errorf("parse PG_VERSION %q: %w", v, err)
	}
	return s, nil
}

// LocalConn is how ramd reaches its own server: TCP to the loopback (or first) listen
// address, as the superuser, database postgres.
func (i *Instance) LocalConn() ConnParams {
	p := ConnParams{
		Host:     localHost(i.cfg.ListenAddr),
		Port:     i.cfg.Port,
		User:     i.cfg.Superuser,
		Password: i.passwords().Superuser,
		DBName:   "postgres",
	}
	p.SSLMode, p.SSLRootCert = i.localTLS()
	return p
}

// ReplicationConn is how other members stream from this server: ConnectAddr, as the
// replication user.
func (i *Instance) ReplicationConn() ConnParams {
	return ConnParams{
		Host:     i.cfg.ConnectAddr,
		Port:     i.cfg.Port,
		User:     i.cfg.ReplicationUser,
		Password: i.passwords().Replication,
		DBName:   "postgres",
	}
}

// connectTimeout bounds each connection attempt on top of the caller's ctx.
const connectTimeout = 2 * time.Second

func connectTo(ctx context.Context, p ConnParams) (*pgx.Conn, error) {
	cc, err := pgx.ParseConfig(p.DSN())
	if err != nil {
		return nil, fmt.Errorf("parse connection config for %s: %w", p, err)
	}
	cc.ConnectTimeout = connectTimeout
	cc.RuntimeParams["application_name"] = "ramd"
	// Short-lived connections gain nothing from the prepared statement cache.
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		if isNotReady(err) {
			return nil, fmt.Errorf("connect to %s: %w: %w", p, ErrNotReady, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", p, err)
	}
	return conn, nil
}

// closeConn closes conn with a short bounded timeout of its own, so closing works even
// after the caller's ctx expired.
// closeConn closes conn within a second, also when ctx has ended (closing must still run).
func closeConn(ctx context.Context, conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Exec runs one SQL statement on the local server as the superuser.
func (i *Instance) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := i.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	return nil
}

// canTraverse reports whether the PostgreSQL user may search directory st.
func (i *Instance) canTraverse(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	mode := st.Mode().Perm()
	switch {
	case int(sys.Uid) == i.uid:
		return mode&0o100 != 0
	case slices.Contains(i.gids, int(sys.Gid)):
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}

// ensureTraversable makes every ancestor of path searchable by the OS user (adding o+x
// where needed) when ramd runs as root; each change is logged.
func (i *Instance) ensureTraversable(path string) error {
	if !i.isRoot {
		return nil
	}
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if !i.canTraverse(st) {
			mode := st.Mode().Perm() | 0o001
			if err := os.Chmod(p, mode); err != nil {
				return fmt.Errorf("make %s traversable for %s: %w", p, i.cfg.OSUser, err)
			}
			i.logger.Warn("made directory traversable for the postgres os user",
				"path", p, "mode", fmt.Sprintf("%04o", mode), "os_user", i.cfg.OSUser)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chown gives path to the OS user when ramd runs as root.
func (i *Instance) chown(path string) error {
	if i.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(i.cred.Uid), int(i.cred.Gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, i.cfg.OSUser, err)
	}
	return nil
}

// prepareDataDir makes sure the data directory exists, is empty, belongs to the OS user
// with mode 0700 and can be reached by it. It reports whether it created the directory.
func (i *Instance) prepareDataDir() (created bool, err error) {
	dir := i.cfg.DataDir
	st, err := i.DataDirState()
	if err != nil {
		return false, err
	}
	if st.Exists && !st.Empty {
		return false, fmt.Errorf("%w: %s", ErrDataDirNotEmpty, dir)
	}
	if !st.Exists {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return false, fmt.Errorf("create parent of data directory: %w", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, fmt.Errorf("create data directory: %w", err)
		}
		created = true
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return created, fmt.Errorf("chmod data directory: %w", err)
	}
	if err := i.chown(dir); err != nil {
		return created, err
	}
	return created, i.ensureTraversable(dir)
}

// clearDataDir removes what a failed initdb or pg_basebackup left: the directory itself
// when we created it, else only its contents (it may be a mount point).
func (i *Instance) clearDataDir(created bool) error {
	if created {
		return os.RemoveAll(i.cfg.DataDir)
	}
	entries, err := os.ReadDir(i.cfg.DataDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(i.cfg.DataDir, e.Name())))
	}
	return errors.Join(errs...)
}

// writeFileAtomic writes data to path via a temporary file in the same directory, owned by
// the OS user with mode perm, fsynced, renamed into place, and the directory fsynced.
func (i *Instance) writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := i.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	tmp = ""
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
