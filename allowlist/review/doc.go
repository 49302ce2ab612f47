// Package review holds what an auditor reads before signing an allowlist:
// the semantic diff of two documents, with every change that widens risk
// marked, and the notes a reviewer must see on an entry. It is the logic
// behind `cardgate allowlist diff` and `show`, callable from tests and
// other tools; the command only prints what it returns.
//
// This package must never:
//   - verify, sign, load or trust a document: it reads Documents parsed by
//     allowlist.ParseUnverified and says nothing about their signatures;
//   - leave a risk-widening change unmarked: when unsure whether a change
//     widens risk, it is marked (the reviewer decides, not the tool).
package review
