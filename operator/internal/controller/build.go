package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// Labels the operator puts on what it creates. LabelRole is set on each pod by the operator
// from ramd's /api/v1/cluster; the primary and replica Services select on it.
const (
	LabelCluster   = "ramd.io/cluster"
	LabelRole      = "ramd.io/role"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelName      = "app.kubernetes.io/name"
	// AnnotationTemplateHash on the StatefulSet and on its pod template (so on each pod) is
	// the hash of the pod template rendered.
	AnnotationTemplateHash = "ramd.io/template-hash"
	managerName            = "ramd-operator"

	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Ports and paths inside a member pod.
const (
	PortPostgreSQL = 5432
	PortAPI        = 8008
	dataMount      = "/var/lib/ramd"
	walMount       = "/var/lib/ramd/wal"
	configMount    = "/etc/ramd/config"
	secretMount    = "/etc/ramd/secrets"
	consulCAMount  = "/etc/ramd/consul-tls"
	bootstrapKey   = "bootstrap.json"
	// handoverWait is RAMD_HANDOVER_WAIT; the pod's grace period leaves room above it for
	// the demotion and PostgreSQL's shutdown.
	handoverWait       = 5
	terminationSeconds = 30
	postgresUID        = 999
	apiUser            = "admin"
)

// Keys of the credentials Secret.
const (
	KeySuperuserPassword   = "superuser-password"
	KeyReplicationPassword = "replication-password"
	KeyAPIPassword         = "api-password"
)

// Names of the objects of a cluster.
func stsName(c *ramdv1.PostgreSQLCluster) string       { return c.Name }
func headlessName(c *ramdv1.PostgreSQLCluster) string  { return c.Name + "-members" }
func primaryName(c *ramdv1.PostgreSQLCluster) string   { return c.Name + "-rw" }
func replicaName(c *ramdv1.PostgreSQLCluster) string   { return c.Name + "-ro" }
func configName(c *ramdv1.PostgreSQLCluster) string    { return c.Name + "-config" }
func dashboardName(c *ramdv1.PostgreSQLCluster) string { return c.Name + "-grafana-dashboard" }

// credentialsName is the Secret with the passwords: the user's, or the generated one.
func credentialsName(c *ramdv1.PostgreSQLCluster) string {
	if c.Spec.SuperuserSecret != "" {
		return c.Spec.SuperuserSecret
	}
	return c.Name + "-credentials"
}

// Scope is ramd's cluster name in Consul (RAMD_SCOPE): the namespace and the resource's name,
// so two clusters of the same name in different namespaces do not share keys.
func Scope(c *ramdv1.PostgreSQLCluster) string { return c.Namespace + "-" + c.Name }

func selectorLabels(c *ramdv1.PostgreSQLCluster) map[string]string {
	return map[string]string{LabelCluster: c.Name}
}

func commonLabels(c *ramdv1.PostgreSQLCluster) map[string]string {
	return map[string]string{LabelCluster: c.Name, LabelManagedBy: managerName, LabelName: "ramd"}
}

func ramdImage(c *ramdv1.PostgreSQLCluster) string {
	if c.Spec.PostgreSQL.Image != "" {
		return c.Spec.PostgreSQL.Image
	}
	if c.Spec.Ramd.Image != "" {
		return c.Spec.Ramd.Image
	}
	return "ramd:latest"
}

// DynamicConfig is the part of ramd's dynamic configuration the resource sets: the
// parameters, the synchronous mode and the backup object. It seeds the cluster
// (RAMD_BOOTSTRAP_CONFIG) and is patched into the running cluster's configuration.
func DynamicConfig(c *ramdv1.PostgreSQLCluster) (map[string]any, error) {
	doc := map[string]any{}
	if len(c.Spec.PostgreSQL.Parameters) > 0 {
		params := map[string]any{}
		for k, v := range c.Spec.PostgreSQL.Parameters {
			params[k] = v
		}
		doc["postgresql"] = map[string]any{"parameters": params}
	}
	if s := c.Spec.Synchronous; s != nil {
		doc["synchronous_mode"] = s.Mode
		if s.Mode != "off" && s.Count > 0 {
			doc["synchronous_node_count"] = s.Count
		}
	}
	if c.Spec.Backup != nil && len(c.Spec.Backup.Raw) > 0 {
		var b any
		if err := json.Unmarshal(c.Spec.Backup.Raw, &b); err != nil {
			return nil, fmt.Errorf("spec.backup is not JSON: %w", err)
		}
		doc["backup"] = b
	}
	return doc, nil
}

// ConfigMap is the dynamic configuration ramd bootstraps the cluster with.
func ConfigMap(c *ramdv1.PostgreSQLCluster) (*corev1.ConfigMap, error) {
	doc, err := DynamicConfig(c)
	if err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the dynamic configuration: %w", err)
	}
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
		Data:       map[string]string{bootstrapKey: string(raw) + "\n"},
	}, nil
}

// Services are the headless Service of the members (stable pod DNS names, also for
// unready pods so replicas can clone during startup), and the read-write and read-only
// Services selecting on the role label.
func Services(c *ramdv1.PostgreSQLCluster) []*corev1.Service {
	ports := []corev1.ServicePort{
		{Name: "postgresql", Port: PortPostgreSQL, TargetPort: intstr.FromString("postgresql"), Protocol: corev1.ProtocolTCP},
		{Name: "api", Port: PortAPI, TargetPort: intstr.FromString("api"), Protocol: corev1.ProtocolTCP},
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: headlessName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			Selector:                 selectorLabels(c),
			Ports:                    ports,
			PublishNotReadyAddresses: true,
		},
	}
	typ := corev1.ServiceType(c.Spec.Services.Type)
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	role := func(name, r string) *corev1.Service {
		sel := selectorLabels(c)
		sel[LabelRole] = r
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: commonLabels(c),
				Annotations: maps.Clone(c.Spec.Services.Annotations)},
			Spec: corev1.ServiceSpec{Type: typ, Selector: sel, Ports: []corev1.ServicePort{ports[0]}},
		}
	}
	return []*corev1.Service{headless, role(primaryName(c), RolePrimary), role(replicaName(c), RoleReplica)}
}

// PodDisruptionBudget lets a voluntary disruption (node drain) take one member at a time.
func PodDisruptionBudget(c *ramdv1.PostgreSQLCluster) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: commonLabels(c)},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: selectorLabels(c)},
		},
	}
}

// env is the container's environment: ramd reads RAMD_* and CONSUL_* (docs/CONFIGURATION.md).
func env(c *ramdv1.PostgreSQLCluster) []corev1.EnvVar {
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	val := func(name, v string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: v} }
	e := []corev1.EnvVar{
		field("POD_IP", "status.podIP"),
		field("RAMD_NAME", "metadata.name"),
		val("RAMD_SCOPE", Scope(c)),
		val("RAMD_DATA_DIR", dataMount+"/pgdata"),
		val("RAMD_PG_BIN_DIR", "/usr/lib/postgresql/"+c.Spec.PostgreSQL.Version+"/bin"),
		val("RAMD_PG_LISTEN", "$(POD_IP)"),
		val("RAMD_PG_CONNECT_ADDRESS", "$(POD_IP)"),
		val("RAMD_PG_PORT", strconv.Itoa(PortPostgreSQL)),
		// Members and clients come from the pod network; every TCP connection authenticates
		// with the passwords of the credentials Secret.
		val("RAMD_PG_HBA_ALLOW", "0.0.0.0/0"),
		val("RAMD_PG_SUPERUSER_PASSWORD_FILE", secretMount+"/"+KeySuperuserPassword),
		val("RAMD_PG_REPLICATION_PASSWORD_FILE", secretMount+"/"+KeyReplicationPassword),
		val("RAMD_API_LISTEN", "$(POD_IP):"+strconv.Itoa(PortAPI)),
		val("RAMD_API_URL", "http://$(POD_IP):"+strconv.Itoa(PortAPI)),
		val("RAMD_API_USERNAME", apiUser),
		val("RAMD_API_PASSWORD_FILE", secretMount+"/"+KeyAPIPassword),
		val("RAMD_BOOTSTRAP_CONFIG", configMount+"/"+bootstrapKey),
		val("RAMD_HANDOVER_WAIT", strconv.Itoa(handoverWait)+"s"),
		val("RAMD_LOG_FORMAT", "json"),
	}
	if c.Spec.Storage.WALSize != nil {
		// A subdirectory: the volume's root may hold lost+found, and initdb wants an empty
		// directory.
		e = append(e, val("RAMD_PG_WAL_DIR", walMount+"/pg_wal"))
	}
	if s := c.Spec.Synchronous; s != nil {
		e = append(e, val("RAMD_SYNCHRONOUS_MODE", s.Mode))
		if s.Count > 0 {
			e = append(e, val("RAMD_SYNCHRONOUS_NODE_COUNT", strconv.Itoa(int(s.Count))))
		}
	}
	cs := c.Spec.Consul
	if cs.UseHostIP {
		port := cs.Port
		if port == 0 {
			port = 8500
		}
		e = append(e, field("HOST_IP", "status.hostIP"), val("CONSUL_HTTP_ADDR", "$(HOST_IP):"+strconv.Itoa(int(port))))
	} else {
		e = append(e, val("CONSUL_HTTP_ADDR", cs.Address))
	}
	if cs.ACLTokenSecret != nil {
		e = append(e, corev1.EnvVar{Name: "CONSUL_HTTP_TOKEN",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: cs.ACLTokenSecret.DeepCopy()}})
	}
	if cs.TLS != nil {
		e = append(e, val("CONSUL_HTTP_SSL", "true"), val("CONSUL_CACERT", consulCAMount+"/ca.crt"))
		if cs.TLS.ServerName != "" {
			e = append(e, val("CONSUL_TLS_SERVER_NAME", cs.TLS.ServerName))
		}
	}
	return e
}

// StatefulSet is the members: one container whose main process is ramd, which runs
// PostgreSQL as its child, with a data volume (and a WAL volume) per member.
func StatefulSet(c *ramdv1.PostgreSQLCluster) *appsv1.StatefulSet {
	labels := commonLabels(c)
	mounts := []corev1.VolumeMount{
		{Name: "data", MountPath: dataMount},
		{Name: "config", MountPath: configMount, ReadOnly: true},
		{Name: "credentials", MountPath: secretMount, ReadOnly: true},
	}
	volumes := []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: configName(c)}}}},
		{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: credentialsName(c), DefaultMode: new(int32(0o400))}}},
	}
	claims := []corev1.PersistentVolumeClaim{claim("data", c.Spec.Storage.Size, c.Spec.Storage.StorageClass, labels)}
	if c.Spec.Storage.WALSize != nil {
		claims = append(claims, claim("wal", *c.Spec.Storage.WALSize, c.Spec.Storage.StorageClass, labels))
		mounts = append(mounts, corev1.VolumeMount{Name: "wal", MountPath: walMount})
	}
	if t := c.Spec.Consul.TLS; t != nil {
		volumes = append(volumes, corev1.Volume{Name: "consul-tls", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: t.CASecret}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "consul-tls", MountPath: consulCAMount, ReadOnly: true})
	}
	probe := func(path string, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString("api")}},
			PeriodSeconds: 5, TimeoutSeconds: 3, FailureThreshold: failures,
		}
	}
	podAnn := map[string]string{}
	if c.Spec.Monitoring.Prometheus {
		podAnn["prometheus.io/scrape"] = "true"
		podAnn["prometheus.io/port"] = strconv.Itoa(PortAPI)
		podAnn["prometheus.io/path"] = "/metrics"
	}
	container := corev1.Container{
		Name:            "ramd",
		Image:           ramdImage(c),
		ImagePullPolicy: c.Spec.Ramd.ImagePullPolicy,
		Env:             env(c),
		Ports: []corev1.ContainerPort{
			{Name: "postgresql", ContainerPort: PortPostgreSQL, Protocol: corev1.ProtocolTCP},
			{Name: "api", ContainerPort: PortAPI, Protocol: corev1.ProtocolTCP},
		},
		Resources:    *c.Spec.PostgreSQL.Resources.DeepCopy(),
		VolumeMounts: mounts,
		// /liveness fails when ramd's HA loop stalls; /readiness when PostgreSQL is not
		// running (or, on a replica, not streaming). A clone can take long: the startup
		// probe gives it an hour before liveness counts.
		StartupProbe:   &corev1.Probe{ProbeHandler: probe("/liveness", 0).ProbeHandler, PeriodSeconds: 10, FailureThreshold: 360},
		LivenessProbe:  probe("/liveness", 6),
		ReadinessProbe: probe("/readiness", 3),
	}
	pod := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnn},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{container},
			Volumes:                       volumes,
			TerminationGracePeriodSeconds: new(int64(terminationSeconds)),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: new(int64(postgresUID)), RunAsGroup: new(int64(postgresUID)),
				FSGroup: new(int64(postgresUID)), RunAsNonRoot: new(true),
			},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
					Weight: 100,
					PodAffinityTerm: corev1.PodAffinityTerm{
						LabelSelector: &metav1.LabelSelector{MatchLabels: selectorLabels(c)},
						TopologyKey:   "kubernetes.io/hostname",
					},
				}},
			}},
		},
	}
	whenDeleted := appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if c.Spec.Storage.DeleteClaimsOnDelete {
		whenDeleted = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	}
	// Each pod says which template it was made from (the rolling update compares it with
	// the StatefulSet's); the hash is of the template without it.
	hash := templateHash(&pod)
	pod.Annotations[AnnotationTemplateHash] = hash
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: stsName(c), Namespace: c.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationTemplateHash: hash}},
		Spec: appsv1.StatefulSetSpec{
			Replicas:             new(c.Spec.Replicas),
			ServiceName:          headlessName(c),
			Selector:             &metav1.LabelSelector{MatchLabels: selectorLabels(c)},
			Template:             pod,
			VolumeClaimTemplates: claims,
			// Members start together: ramd, not the start order, decides who bootstraps.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			// Image and parameter rollouts are left to the operator (the primary last); the
			// StatefulSet controller only replaces a pod that is deleted.
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			// Data outlives the resource unless the user deletes the claims or sets
			// spec.storage.deleteClaimsOnDelete.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: whenDeleted,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
		},
	}
}

// templateHash identifies a rendered pod template. The API server fills defaults into the
// stored template, so comparing it with the rendered one would always differ; the hash of
// what the operator rendered, kept in an annotation, says whether the template changed.
func templateHash(t *corev1.PodTemplateSpec) string {
	raw, err := json.Marshal(t)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

func claim(name string, size resource.Quantity, class *string, labels map[string]string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: class,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}
