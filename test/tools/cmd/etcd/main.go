// Command etcd is etcd's own server entry point, built here so that the local
// cluster does not need a downloaded etcd release.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
