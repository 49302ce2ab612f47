// Package egresspolicy turns a verified, signed allowlist into network
// policy for the gateway's pods: a Kubernetes NetworkPolicy
// (networking.k8s.io/v1) or a CiliumNetworkPolicy (cilium.io/v2). The
// network layer then enforces, from the same document the auditors signed,
// what the gateway enforces in its process: a second, independent control.
//
// Every allowlist entry becomes exactly one egress rule, on the entry's
// port only (TCP), ordered by entry id; then come the infrastructure peers
// the gateway needs (DNS, Redis, the key service, the telemetry
// collector), each declared by the operator (see Peer). Nothing else is
// allowed: the output selects the gateway's pods and lists Egress as a
// policy type, so whatever no rule names is dropped. The output is a pure
// function of the allowlist's bytes and the Options: no clock, no map
// order, no environment.
//
// How each entry maps:
//
//	entry host            NetworkPolicy                    CiliumNetworkPolicy
//	IP literal            ipBlock <ip>/32 (/128)           toCIDR <ip>/32 (/128)
//	name + unsafe ranges  ipBlock per signed range         toFQDNs matchName <name>
//	name                  refused (see below)              toFQDNs matchName <name>
//	*.name (wildcard)     refused (see below)              toFQDNs matchPattern **.name
//
// A NetworkPolicy cannot name a host, only addresses. An entry whose host
// is a name, and which names no address range, therefore cannot be
// expressed; Generate refuses the whole document with an
// *UnexpressibleError naming those entries (fail closed), unless
// Options.OmitUnexpressible is set, in which case the entries are left out
// and listed in the output's header: the policy then drops the gateway's
// traffic to them, and another reviewed policy (or the Cilium output) must
// allow it. A name entry with unsafe_allow_ranges maps to those ranges:
// they are the only special-purpose addresses it may reach, and the
// auditors signed them.
//
// The allowlist's wildcard "*.x" matches one or more labels below x. In
// Cilium, "*.x" matches exactly one label and the prefix "**." matches
// any depth, so a wildcard entry becomes matchPattern "**.x". Cilium
// releases older than that prefix read "**.x" as a single label: narrower
// than the entry, never wider.
//
// Cilium learns the addresses behind toFQDNs from DNS answers that pass
// through its DNS proxy, which needs an L7 dns rule on the DNS peer. The
// generated rule allows lookups of exactly the names the policy uses (the
// entries' hosts and patterns and the peers' Host names), not "*": a
// compromised gateway cannot use DNS to reach or signal other names. The
// Kubernetes manifests set ndots:1 so that these lookups go out as
// absolute names first.
//
// This package must never:
//   - accept an allowlist that has not passed allowlist.Verify (Generate
//     refuses one without a counted signature or whose bytes do not hash
//     to its SHA256);
//   - widen an entry: an entry maps to its own host or signed ranges and
//     its own port, never to a wider range, another port or "world";
//   - emit a rule that allows everything (an empty peer or port list).
package egresspolicy
