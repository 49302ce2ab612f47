// Package checkpoint signs and publishes checkpoints of the audit log's
// Merkle tree (see audit.Tree) in the C2SP tlog-checkpoint format: a
// signed note (golang.org/x/mod/sumdb/note) whose text is the log's origin,
// its size in lines, and its root hash in base64, each on its own line.
//
//	cardgate.example.com/audit/prod-eu-1
//	10482
//	pWRJm0rJ1Ou2h0jrXI8GI7AhmbJvVpjNlkhY2KcW0vA=
//
//	— cardgate.example.com/audit/prod-eu-1 Az3grl…
//
// A Publisher signs one at an interval (when the tree grew) and once more
// at shutdown, and publishes it to a file by atomic rename, where auditors
// fetch it. Each checkpoint commits the gateway to every line of the audit
// file up to its size: a line later dropped, reordered, rewritten or cut
// from the end no longer gives the published root, and a fork (two roots
// for one history) shows as two checkpoints without a consistency proof.
//
// The key signs only; it never leaves its backend when the backend is
// Vault Transit (vaultclient.TransitNoteSigner). A local key (LocalSigner)
// is for development: whoever can read it can sign any history.
//
// It must never sign a root that is not the file's: a Source that no
// longer matches its file (audit.ErrTreeStopped) stops publishing, and a
// file that does not extend the last checkpoint published refuses to start
// (Publisher.Check).
package checkpoint
