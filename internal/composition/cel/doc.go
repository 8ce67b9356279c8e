// Package cel parses `${...}` templates and evaluates their CEL expressions
// in a kit/celenv environment (Kubernetes CEL libraries, cel-go's
// extensions, optional field access, cost limit) with the variables of a
// Composition (xr, environment, observed resources). It knows nothing about
// clients, controllers or Compositions: it turns strings and values into
// values.
package cel
