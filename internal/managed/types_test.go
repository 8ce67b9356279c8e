package managed_test

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

type apiextJSON = apiextensionsv1.JSON
