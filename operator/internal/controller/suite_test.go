package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// The control plane the tests run against: a real etcd and kube-apiserver (envtest), built
// by scripts/build-k8s.sh. There is no kubelet, scheduler or garbage collector: pods are
// created by the tests themselves, and deletion is checked through owner references.
var (
	k8sClient  client.Client
	envSkip    string // why the control plane is not there (tests that need it skip)
	fakeRamd   = &ramdFake{}
	fakePort   int
	envStarted time.Duration
)

// k8sVersion must match scripts/build-k8s.sh.
const k8sVersion = "1.37.2"

// assetsDir is KUBEBUILDER_ASSETS, else the cache folder build-k8s.sh fills.
func assetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	cache := os.Getenv("RAMD_CACHE_DIR")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return ""
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "ramd")
	}
	return filepath.Join(cache, "k8s-"+k8sVersion)
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir := assetsDir()
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			envSkip = fmt.Sprintf("no %s in %q (run scripts/build-k8s.sh, or set KUBEBUILDER_ASSETS)", bin, dir)
			break
		}
	}
	if envSkip != "" {
		if os.Getenv("RAMD_TEST_REQUIRE_REAL") == "1" {
			fmt.Fprintln(os.Stderr, "RAMD_TEST_REQUIRE_REAL=1 but the control plane is missing:", envSkip)
			return 1
		}
		return m.Run()
	}
	stop, err := startControlPlane(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func startControlPlane(dir string) (func() error, error) {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false), zap.Level(zapLevel())))
	env := &envtest.Environment{
		BinaryAssetsDirectory: dir,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "charts", "ramd-operator", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	// Loopback only; kube-apiserver 1.37 refuses a loopback advertise address unless the
	// endpoint reconciler is off.
	env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").Set("endpoint-reconciler-type", "none")
	t0 := time.Now()
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", dir, err)
	}
	envStarted = time.Since(t0)
	fmt.Fprintf(os.Stderr, "envtest: etcd and kube-apiserver started in %s\n", envStarted.Round(100*time.Millisecond))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("core scheme: %w", err)
	}
	if err := ramdv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("ramd scheme: %w", err)
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}

	// The stand-in for ramd's API of the pods the tests create (all at 127.0.0.1).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the ramd stand-in: %w", err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: fakeRamd, ReadHeaderTimeout: 5 * time.Second}}
	srv.Start()
	fakePort = ln.Addr().(*net.TCPAddr).Port

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	r := &Reconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(),
		Ramd:       &HTTPRamdClient{Port: fakePort, Timeout: 2 * time.Second},
		Resync:     300 * time.Millisecond,
		NodeIP:     "127.0.0.1",
		Recorder:   mgr.GetEventRecorder("ramd-operator"),
		Switchover: rollingStandIn}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() error {
		cancel()
		var errs []error
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("manager: %w", err))
			}
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("manager did not stop within 30s"))
		}
		srv.Close()
		if err := env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("envtest: %w", err))
		}
		if len(errs) > 0 {
			return errs[0]
		}
		return nil
	}, nil
}

// zapLevel is the operator's log level in the tests: errors only, unless RAMD_TEST_VERBOSE.
func zapLevel() zapcore.Level {
	if v, _ := strconv.ParseBool(os.Getenv("RAMD_TEST_VERBOSE")); v {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// needEnv skips a test that needs the control plane when it is not there.
func needEnv(t *testing.T) {
	t.Helper()
	if envSkip != "" {
		t.Skip("envtest control plane missing: " + envSkip + "; RAMD_TEST_REQUIRE_REAL=1 makes this a failure")
	}
}

// ramdFake answers GET /api/v1/cluster with the status the test sets, and records PATCH
// /config, refusing it when the test says so.
type ramdFake struct {
	mu      sync.Mutex
	status  *ClusterStatus
	refuse  string
	patches []map[string]any
}

func (f *ramdFake) set(st *ClusterStatus, refuse string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.refuse = st, refuse
}

func (f *ramdFake) patchCount() ([]map[string]any, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.patches...), len(f.patches)
}

func (f *ramdFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/cluster" && f.status != nil:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.status)
	case r.Method == http.MethodPatch && r.URL.Path == "/config":
		if u, p, ok := r.BasicAuth(); !ok || u != apiUser || p == "" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var doc map[string]any
		if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.patches = append(f.patches, doc)
		if f.refuse != "" {
			http.Error(w, f.refuse, http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "not available", http.StatusServiceUnavailable)
	}
}

// updateSpec applies change to the resource at key as the user would, read and updated
// again when the operator wrote it in between (a status or annotation write bumps the
// resource version).
func updateSpec(t *testing.T, ctx context.Context, key client.ObjectKey, change func(*ramdv1.PostgreSQLCluster)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		change(&cur)
		return k8sClient.Update(ctx, &cur)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", key, err)
	}
}
