package podtemplate

import (
	"encoding/json"
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/rand"
)

// HashLabel is the label that tells the pods of one template revision from
// another's (the Deployment controller's own label).
const HashLabel = "pod-template-hash"

// Hash names a pod template: the FNV-32a hash of its JSON without the
// HashLabel label, safely encoded like the Deployment controller's. Two
// templates equal but for that label have the same hash.
func Hash(t *corev1.PodTemplateSpec) string {
	c := t.DeepCopy()
	delete(c.Labels, HashLabel)
	b, _ := json.Marshal(c)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// Same reports whether two pod templates are equal but for their HashLabel
// labels, as the Deployment controller compares them.
func Same(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, HashLabel)
	delete(b.Labels, HashLabel)
	return equality.Semantic.DeepEqual(a, b)
}
