package podtemplate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHash(t *testing.T) {
	base := func() *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "web:1"}}},
		}
	}
	labelled := base()
	labelled.Labels[HashLabel] = "abc"
	image := base()
	image.Spec.Containers[0].Image = "web:2"
	annotated := base()
	annotated.Annotations = map[string]string{"a": "b"}
	cases := map[string]struct {
		a, b *corev1.PodTemplateSpec
		same bool
	}{
		"equal templates":                      {a: base(), b: base(), same: true},
		"the hash label is left out":           {a: base(), b: labelled, same: true},
		"another image is another revision":    {a: base(), b: image},
		"a pod annotation is another revision": {a: base(), b: annotated},
	}
	for name, tc := range cases {
		if got := Hash(tc.a) == Hash(tc.b); got != tc.same {
			t.Errorf("%s: equal hashes %v, want %v (%s, %s)", name, got, tc.same, Hash(tc.a), Hash(tc.b))
		}
		if got := Same(tc.a, tc.b); got != tc.same {
			t.Errorf("%s: Same %v, want %v", name, got, tc.same)
		}
	}
	if h := Hash(base()); h == "" || h != Hash(base()) {
		t.Errorf("hash %q is not stable", h)
	}
	Hash(labelled)
	Same(labelled, base())
	if labelled.Labels[HashLabel] != "abc" {
		t.Error("Hash or Same changed the template it was given")
	}
}
