package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	apiextensionsv1alpha1 "github.com/strata-dev/strata/apis/apiextensions/v1alpha1"
	gitopsv1alpha1 "github.com/strata-dev/strata/apis/gitops/v1alpha1"
	secretsv1alpha1 "github.com/strata-dev/strata/apis/secrets/v1alpha1"
	nopv1alpha1 "github.com/strata-dev/strata/providers/nop/apis/nop/v1alpha1"
	s3v1alpha1 "github.com/strata-dev/strata/providers/s3/apis/s3/v1alpha1"
	mysqlv1alpha1 "github.com/strata-dev/strata/providers/sql/apis/mysql/v1alpha1"
	postgresqlv1alpha1 "github.com/strata-dev/strata/providers/sql/apis/postgresql/v1alpha1"
)

// AddToSchemes lists the AddToScheme functions of every Strata API group.
// A new group (in apis/ or a provider) appends its own here.
var AddToSchemes = runtime.SchemeBuilder{
	clientgoscheme.AddToScheme,
	nopv1alpha1.AddToScheme,
	postgresqlv1alpha1.AddToScheme,
	mysqlv1alpha1.AddToScheme,
	s3v1alpha1.AddToScheme,
	apiextensionsv1alpha1.AddToScheme,
	gitopsv1alpha1.AddToScheme,
	secretsv1alpha1.AddToScheme,
}

// New returns a scheme holding the built-in Kubernetes kinds and every
// Strata kind.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(AddToSchemes.AddToScheme(s))
	return s
}
