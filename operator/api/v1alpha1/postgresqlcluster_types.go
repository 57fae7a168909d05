package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PostgreSQLClusterSpec is the desired state of a cluster: how many members, which images,
// storage, how ramd reaches Consul, and the dynamic configuration ramd starts with.
//
// +kubebuilder:validation:XValidation:rule="!has(self.synchronous) || self.synchronous.mode == 'off' || self.synchronous.count < self.replicas",message="synchronous.count must be less than replicas: a primary needs at least that many standbys besides itself"
type PostgreSQLClusterSpec struct {
	// Replicas is the number of members (one primary, the rest replicas).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default=3
	Replicas int32 `json:"replicas"`

	// PostgreSQL is the server: major version, image and resources, and its parameters.
	PostgreSQL PostgreSQLSpec `json:"postgresql"`

	// Ramd is the ramd container (ramd runs PostgreSQL as its child, as on hosts).
	// +optional
	Ramd RamdSpec `json:"ramd,omitempty"`

	// Storage is the persistent volume of each member.
	Storage StorageSpec `json:"storage"`

	// Consul is where ramd coordinates: the leader lock and the member records live there.
	Consul ConsulSpec `json:"consul"`

	// Synchronous is the synchronous replication mode ramd keeps.
	// +optional
	Synchronous *SynchronousSpec `json:"synchronous,omitempty"`

	// Backup is ramd's backup configuration object, passed through unchanged into the
	// dynamic configuration (docs/BACKUPS.md); ramd validates it.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Backup *apiextensionsv1.JSON `json:"backup,omitempty"`

	// Services is how the read-write and read-only Services are exposed.
	// +optional
	Services ServicesSpec `json:"services,omitempty"`

	// Monitoring turns on the Prometheus scrape annotations and the Grafana dashboard.
	// +optional
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`

	// SuperuserSecret names a Secret with the keys superuser-password and
	// replication-password; when empty the operator generates <cluster>-credentials.
	// +optional
	SuperuserSecret string `json:"superuserSecret,omitempty"`
}

// PostgreSQLSpec is the PostgreSQL server of every member.
type PostgreSQLSpec struct {
	// Version is the PostgreSQL major version the image carries.
	// +kubebuilder:validation:Enum="15";"16";"17";"18"
	// +kubebuilder:default="17"
	// +optional
	Version string `json:"version,omitempty"`

	// Image is the container image with ramd and PostgreSQL (deploy/Dockerfile builds it).
	// When empty, the ramd image is used.
	// +optional
	Image string `json:"image,omitempty"`

	// Resources of the container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Parameters are postgresql.parameters of ramd's dynamic configuration; ramd validates
	// them against the installed server and refuses bad values.
	// +optional
	// +kubebuilder:validation:MaxProperties=500
	Parameters map[string]string `json:"parameters,omitempty"`

	// RestartPolicy says what happens when ramd reports members waiting for a restart (a
	// parameter change that needs one): Rolling asks ramd for a rolling restart of those
	// members (replicas one at a time, then a switchover and the old primary); Manual leaves
	// it to you (ramctrl restart) and only reports it in the status.
	// +kubebuilder:validation:Enum=Rolling;Manual
	// +kubebuilder:default=Rolling
	// +optional
	RestartPolicy string `json:"restartPolicy,omitempty"`
}

// Restart policies of PostgreSQLSpec.
const (
	RestartRolling = "Rolling"
	RestartManual  = "Manual"
)

// RamdSpec is the ramd container.
type RamdSpec struct {
	// Image of ramd (with PostgreSQL inside, deploy/Dockerfile).
	// +kubebuilder:default="ramd:latest"
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`
}

// StorageSpec is the volumes of each member.
type StorageSpec struct {
	// Size of the data volume.
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="size must be positive"
	Size resource.Quantity `json:"size"`

	// StorageClass of the volumes; the cluster's default when empty.
	// +optional
	StorageClass *string `json:"storageClass,omitempty"`

	// WALSize, when set, gives pg_wal a volume of its own of this size.
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="walSize must be positive"
	// +optional
	WALSize *resource.Quantity `json:"walSize,omitempty"`

	// DeleteClaimsOnDelete deletes the members' PersistentVolumeClaims (data and WAL) when
	// the resource is deleted. By default they are kept, and a new resource of the same
	// name and namespace finds its members' data again.
	// +optional
	DeleteClaimsOnDelete bool `json:"deleteClaimsOnDelete,omitempty"`
}

// ConsulSpec says how ramd reaches its Consul agent.
//
// +kubebuilder:validation:XValidation:rule="has(self.address) != (has(self.useHostIP) && self.useHostIP)",message="set exactly one of address and useHostIP"
type ConsulSpec struct {
	// Address is host:port of a Consul agent (e.g. the consul-client Service).
	// +kubebuilder:validation:MinLength=1
	// +optional
	Address string `json:"address,omitempty"`

	// UseHostIP points ramd at the Consul client agent of its Kubernetes node (the pod's
	// status.hostIP), the usual layout with Consul's Helm chart.
	// +optional
	UseHostIP bool `json:"useHostIP,omitempty"`

	// Port of the node-local agent when UseHostIP is set.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=8500
	// +optional
	Port int32 `json:"port,omitempty"`

	// ACLTokenSecret is the key of a Secret holding ramd's Consul ACL token.
	// +optional
	ACLTokenSecret *corev1.SecretKeySelector `json:"aclTokenSecret,omitempty"`

	// TLS of the connection to Consul.
	// +optional
	TLS *ConsulTLSSpec `json:"tls,omitempty"`
}

// ConsulTLSSpec is HTTPS to Consul.
type ConsulTLSSpec struct {
	// CASecret names a Secret whose key ca.crt is the CA of Consul's certificates.
	// +kubebuilder:validation:MinLength=1
	CASecret string `json:"caSecret"`

	// ServerName to verify, when it differs from the address's host.
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// SynchronousSpec is ramd's synchronous_mode and synchronous_node_count.
type SynchronousSpec struct {
	// Mode: off, on (FIRST n) or quorum (ANY n).
	// +kubebuilder:validation:Enum=off;on;quorum
	// +kubebuilder:default=off
	Mode string `json:"mode"`

	// Count is the number of synchronous standbys.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=1
	// +optional
	Count int32 `json:"count,omitempty"`
}

// ServiceType is the exposure of the read-write and read-only Services.
// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
type ServiceType string

// ServicesSpec is the exposure of the cluster's Services.
type ServicesSpec struct {
	// Type of the primary and replica Services.
	// +kubebuilder:default=ClusterIP
	// +optional
	Type ServiceType `json:"type,omitempty"`

	// Annotations put on the primary and replica Services (load balancer settings).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MonitoringSpec is what the operator wires for monitoring.
type MonitoringSpec struct {
	// Prometheus adds scrape annotations for ramd's /metrics to the pods, and a PodMonitor
	// when the Prometheus operator's PodMonitor kind is installed.
	// +optional
	Prometheus bool `json:"prometheus,omitempty"`

	// Grafana publishes ramd's dashboard as a ConfigMap labelled for Grafana's sidecar.
	// +optional
	Grafana bool `json:"grafana,omitempty"`
}

// Phase is the coarse state of a cluster.
type Phase string

// Phases of a cluster.
const (
	PhasePending  Phase = "Pending"
	PhaseCreating Phase = "Creating"
	PhaseScaling  Phase = "Scaling"
	PhaseRunning  Phase = "Running"
	PhaseDegraded Phase = "Degraded"
)

// Condition types of a cluster.
const (
	// ConditionResourcesReady: the StatefulSet, Services, ConfigMap and Secret exist as specified.
	ConditionResourcesReady = "ResourcesReady"
	// ConditionMembersReachable: the operator read the cluster status from a member's API.
	ConditionMembersReachable = "MembersReachable"
	// ConditionPrimaryAvailable: a member holds the leader lock.
	ConditionPrimaryAvailable = "PrimaryAvailable"
	// ConditionConfigurationAccepted: ramd accepted the dynamic configuration of the spec.
	ConditionConfigurationAccepted = "ConfigurationAccepted"
	// ConditionConsulCleanup: on deletion, the cluster's keys were removed from Consul
	// (False with the reason while Consul cannot be reached or refuses).
	ConditionConsulCleanup = "ConsulCleanup"
	// ConditionMonitoring: the monitoring objects spec.monitoring asks for exist (False
	// with PodMonitorKindMissing when the Prometheus operator's CRDs are not installed).
	ConditionMonitoring = "Monitoring"
	// ConditionRollingUpdate: True while member pods are replaced to run the StatefulSet's
	// current template (replicas one at a time, a switchover, the old primary last), with
	// the step in the reason and the progress in the message; False (Complete) once all are.
	ConditionRollingUpdate = "RollingUpdate"
)

// MemberStatus is one member as ramd reports it.
type MemberStatus struct {
	// Name of the member (the pod's name).
	Name string `json:"name"`
	// Role: primary, replica, standby-leader, ...
	// +optional
	Role string `json:"role,omitempty"`
	// State of PostgreSQL as ramd sees it.
	// +optional
	State string `json:"state,omitempty"`
	// LagBytes the member trails the primary.
	// +optional
	LagBytes *int64 `json:"lagBytes,omitempty"`
	// Timeline of the member.
	// +optional
	Timeline int64 `json:"timeline,omitempty"`
	// PendingRestart: a parameter change waits for a restart.
	// +optional
	PendingRestart bool `json:"pendingRestart,omitempty"`
}

// PostgreSQLClusterStatus is the observed state of a cluster.
type PostgreSQLClusterStatus struct {
	// Phase of the cluster.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Primary is the member holding ramd's leader lock.
	// +optional
	Primary string `json:"primary,omitempty"`
	// Replicas is the StatefulSet's desired member count.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the StatefulSet's ready pod count.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Members as ramd reports them.
	// +optional
	Members []MemberStatus `json:"members,omitempty"`
	// LastBackupTime is the end of the newest good backup the primary knows.
	// +optional
	LastBackupTime *metav1.Time `json:"lastBackupTime,omitempty"`
	// ConfigHash is the hash of the dynamic configuration ramd last accepted from the spec.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: ResourcesReady, MembersReachable, PrimaryAvailable, ConfigurationAccepted,
	// Monitoring, RollingUpdate, ConsulCleanup (on deletion).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PostgreSQLCluster is a PostgreSQL cluster kept highly available by ramd through Consul.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas
// +kubebuilder:resource:shortName=pgc;ramdpg,categories=ramd
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Primary",type=string,JSONPath=`.status.primary`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.postgresql.version`,priority=1
// +kubebuilder:printcolumn:name="Last Backup",type=date,JSONPath=`.status.lastBackupTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PostgreSQLCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec PostgreSQLClusterSpec `json:"spec"`
	// +optional
	Status PostgreSQLClusterStatus `json:"status,omitempty"`
}

// PostgreSQLClusterList is a list of PostgreSQLCluster.
//
// +kubebuilder:object:root=true
type PostgreSQLClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PostgreSQLCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PostgreSQLCluster{}, &PostgreSQLClusterList{})
}
