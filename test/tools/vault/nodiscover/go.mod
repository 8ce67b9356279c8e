// Vault's cloud auto-join library, without its clouds: the local Vault the
// tests start is a dev server with in-memory storage and never joins a raft
// cluster, and the providers (the AWS, Azure, Google, SoftLayer, vSphere, ...
// SDKs) were 47 of the 128 MB of source Vault's build compiles. vault/go.mod
// replaces github.com/hashicorp/go-discover with this module; it keeps the
// names Vault uses, knows no provider, and refuses every auto-join.
module github.com/hashicorp/go-discover

go 1.26.0
