package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMemberAPIAddress(t *testing.T) {
	withPorts := func(ports ...corev1.ContainerPort) corev1.Pod {
		return corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ramd", Ports: ports}}},
			Status: corev1.PodStatus{PodIP: "10.0.0.7"}}
	}
	deleting := withPorts()
	deleting.DeletionTimestamp = &metav1.Time{}
	cases := []struct {
		name string
		port int
		pod  corev1.Pod
		want string
	}{
		{"the rendered pod: its api port", PortAPI, renderedPod(t), "10.0.0.7:8008"},
		{"a container port named api wins", 9999, withPorts(corev1.ContainerPort{Name: "postgresql", ContainerPort: 5432},
			corev1.ContainerPort{Name: "api", ContainerPort: 18008}), "10.0.0.7:18008"},
		{"no api port: the client's", 9999, withPorts(corev1.ContainerPort{Name: "postgresql", ContainerPort: 5432}), "10.0.0.7:9999"},
		{"no api port, no client port: 8008", 0, withPorts(), "10.0.0.7:8008"},
		{"no address", PortAPI, corev1.Pod{}, ""},
		{"being deleted", PortAPI, deleting, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &HTTPRamdClient{Port: tc.port}
			if got := h.address(tc.pod); got != tc.want {
				t.Errorf("address %q, want %q", got, tc.want)
			}
		})
	}
}

// renderedPod is a pod made from the rendered template, with an address.
func renderedPod(t *testing.T) corev1.Pod {
	t.Helper()
	sts := StatefulSet(minimal("db", "pg"))
	return corev1.Pod{Spec: sts.Spec.Template.Spec, Status: corev1.PodStatus{PodIP: "10.0.0.7"}}
}
