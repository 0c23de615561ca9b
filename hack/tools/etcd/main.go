// Command etcd wraps etcdmain so that etcd can be built from the Go module
// proxy at a pinned version (the etcd/v3 umbrella module is not published).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
