// Package cel parses `${...}` templates and compiles and evaluates their CEL
// expressions with the Kubernetes CEL libraries, cel-go's extensions,
// optional field access and a cost limit. It knows nothing about clients,
// controllers or Compositions: it turns strings and values into values.
package cel
