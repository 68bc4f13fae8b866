// Package profiles parses, validates and embeds Rampart's pipeline
// profiles: YAML files decoded strictly (unknown keys are errors) into a
// plain Spec, with every problem reported as file:line:column and field
// path.
//
// Parsing and validation touch nothing on the machine and are safe from
// any goroutine; building the running system from a Spec is the job of the
// packages the Spec configures.
package profiles
