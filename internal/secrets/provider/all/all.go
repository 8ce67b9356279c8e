// Package all is the registry of store providers: it maps a provider name
// (the field set under a store's spec.provider) to the Constructor that
// builds its Client. Adding a provider is one line here. It knows nothing
// about controllers.
package all

import (
	"github.com/strata-dev/strata/internal/secrets/provider"
	"github.com/strata-dev/strata/internal/secrets/provider/fake"
	"github.com/strata-dev/strata/internal/secrets/provider/kubernetes"
	"github.com/strata-dev/strata/internal/secrets/provider/vault"
	"github.com/strata-dev/strata/internal/secrets/provider/webhook"
)

// Constructors maps provider.Name(spec.provider) to its constructor.
var Constructors = map[string]provider.Constructor{
	"fake":       fake.New,
	"kubernetes": kubernetes.New,
	"vault":      vault.NewFromStore,
	"webhook":    webhook.New,
}
