// Package version holds the build version, set with -ldflags -X.
package version

// Version is the semantic version of the build; "dev" for local builds.
var Version = "dev"

// Commit is the git commit of the build.
var Commit = "unknown"
