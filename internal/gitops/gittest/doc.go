// Package gittest makes real Git repositories for tests (commits, branches,
// tags through the git CLI) and serves them over loopback: smart HTTP with
// basic auth (git's own http-backend behind net/http/cgi) and SSH with a key
// (an x/crypto/ssh server that runs git-upload-pack). Only tests import it.
package gittest
