package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// DeepCopyInto copies p into out.
func (p ManagementPolicies) DeepCopyInto(out *ManagementPolicies) {
	*out = append(ManagementPolicies(nil), p...)
}

// DeepCopyInto copies in into out.
func (in *Reference) DeepCopyInto(out *Reference) { *out = *in }

// DeepCopy returns a copy.
func (in *Reference) DeepCopy() *Reference {
	if in == nil {
		return nil
	}
	out := new(Reference)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *Selector) DeepCopyInto(out *Selector) {
	*out = *in
	if in.MatchLabels != nil {
		out.MatchLabels = make(map[string]string, len(in.MatchLabels))
		for k, v := range in.MatchLabels {
			out.MatchLabels[k] = v
		}
	}
}

// DeepCopy returns a copy.
func (in *Selector) DeepCopy() *Selector {
	if in == nil {
		return nil
	}
	out := new(Selector)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *SecretReference) DeepCopyInto(out *SecretReference) { *out = *in }

// DeepCopy returns a copy.
func (in *SecretReference) DeepCopy() *SecretReference {
	if in == nil {
		return nil
	}
	out := new(SecretReference)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *SecretKeySelector) DeepCopyInto(out *SecretKeySelector) { *out = *in }

// DeepCopy returns a copy.
func (in *SecretKeySelector) DeepCopy() *SecretKeySelector {
	if in == nil {
		return nil
	}
	out := new(SecretKeySelector)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *ResourceSpec) DeepCopyInto(out *ResourceSpec) {
	*out = *in
	out.ProviderConfigReference = in.ProviderConfigReference.DeepCopy()
	out.WriteConnectionSecretToReference = in.WriteConnectionSecretToReference.DeepCopy()
	if in.ManagementPolicies != nil {
		in.ManagementPolicies.DeepCopyInto(&out.ManagementPolicies)
	}
}

// DeepCopy returns a copy.
func (in *ResourceSpec) DeepCopy() *ResourceSpec {
	if in == nil {
		return nil
	}
	out := new(ResourceSpec)
	in.DeepCopyInto(out)
	return out
}

func copyConditions(in []metav1.Condition) []metav1.Condition {
	if in == nil {
		return nil
	}
	out := make([]metav1.Condition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *ResourceStatus) DeepCopyInto(out *ResourceStatus) {
	*out = *in
	out.Conditions = copyConditions(in.Conditions)
}

// DeepCopy returns a copy.
func (in *ResourceStatus) DeepCopy() *ResourceStatus {
	if in == nil {
		return nil
	}
	out := new(ResourceStatus)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies in into out.
func (in *ProviderConfigStatus) DeepCopyInto(out *ProviderConfigStatus) {
	*out = *in
	out.Conditions = copyConditions(in.Conditions)
}

// DeepCopy returns a copy.
func (in *ProviderConfigStatus) DeepCopy() *ProviderConfigStatus {
	if in == nil {
		return nil
	}
	out := new(ProviderConfigStatus)
	in.DeepCopyInto(out)
	return out
}
