// Package apis collects Strata's API groups into one scheme. Each versioned
// group lives in apis/<group>/<version> and adds itself to AddToSchemes; the
// generated CRD manifests are in apis/crds.
package apis
