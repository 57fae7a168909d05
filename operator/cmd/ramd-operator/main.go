// Command ramd-operator runs the PostgreSQLCluster controller: it deploys ramd members as
// a StatefulSet and follows what ramd reports (docs/KUBERNETES.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
	"github.com/ramd-project/ramd/operator/internal/controller"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ramd-operator:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr = flag.String("metrics-bind-address", ":8080", "address of the metrics endpoint (0 turns it off)")
		probeAddr   = flag.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
		leaderElect = flag.Bool("leader-elect", true, "elect one active operator among the replicas (a Lease in the operator's namespace)")
		resync      = flag.Duration("resync", 5*time.Second, "how often each cluster's status and role labels are refreshed from ramd")
		apiTimeout  = flag.Duration("ramd-api-timeout", 2*time.Second, "timeout of one request to a member's API")
	)
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("registering the core types: %w", err)
	}
	if err := ramdv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("registering ramd.io/v1alpha1: %w", err)
	}
	// Only the pods of ramd clusters are cached (the operator labels them), not every pod.
	member, err := labels.NewRequirement(controller.LabelCluster, selection.Exists, nil)
	if err != nil {
		return fmt.Errorf("pod selector: %w", err)
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*member)},
		}},
		Metrics:                metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress: *probeAddr,
		LeaderElection:         *leaderElect,
		LeaderElectionID:       "ramd-operator.ramd.io",
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	r := &controller.Reconciler{
		Client: mgr.GetClient(),
		Scheme: mgr.GetScheme(),
		Ramd:   &controller.HTTPRamdClient{Port: controller.PortAPI, Timeout: *apiTimeout},
		Resync: *resync,
		// Core events, which the ClusterRole grants (events.k8s.io would need its own rule).
		Events: mgr.GetEventRecorderFor("ramd-operator"), //nolint:staticcheck // see above
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	return nil
}
