// Package vip announces vip Eips with keepalived (VRRPv3).
//
// # Plan
//
// VRRP router IDs must be unique on a segment and identical on every node,
// so they are not derived per node: one speaker, the writer (the alive
// vip speaker with the smallest node name), computes a Plan with Compute
// from the core's desired state and the previous plan, and records it in
// ConfigMap RecordName in the speaker namespace (optimistic concurrency).
// Every vip speaker reads the recorded plan and configures keepalived from
// it (Local), so all members of a group run the same VRID with the same
// priorities. Members of a group stay members while their speaker is dead
// or restarting: VRRP moves the addresses, the plan does not. Each speaker
// also publishes its own addresses per interface in the record, the
// unicast peers of the others.
//
// # keepalived
//
// The configuration is rendered from keepalived.conf.tmpl (text/template,
// embedded) into --run-dir and checked with `keepalived -t` before it is
// installed; a Supervisor runs keepalived, reloads it with SIGHUP when the
// file changes (instances keep their state, unaffected addresses stay),
// restarts it with back-off when it exits, removes the addresses a killed
// keepalived left behind (IPv4 label "<iface>:oelb", and the run dir's
// address record), and writes its state to a status file that the backend
// turns into Events and metrics. The Supervisor runs inside the speaker
// (keepalived stops with the speaker, handing over with priority 0) or, with
// --keepalived-sidecar, in a container of its own (`openelb speaker
// keepalived`) that shares the run dir, so that a speaker restart leaves
// keepalived and the addresses where they are.
//
// See docs/vip.md and docs/design/0009-vip.md.
package vip
