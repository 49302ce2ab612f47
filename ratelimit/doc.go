// Package ratelimit owns cardgate's budgets: how many forwards a caller may
// make, in total and to each destination, with the generic cell rate
// algorithm (GCRA). A Limit of {Rate: 100, Per: time.Second, Burst: 20}
// admits 100 requests a second on average and up to 20 at once; a zero
// Rate means no limit.
//
// Two implementations share the arithmetic: Redis, for replicas that share
// one budget (one Lua script checks and updates both of a request's limits
// atomically, using the Redis server's clock; the keys of one caller share
// a hash tag, so the script works on Redis Cluster), and Memory, for the
// single-node bolt mode.
//
// It must never let a request through because the budget could not be
// checked: when Redis fails, Allow returns an error (code
// rate_limit_unavailable) and the request is refused. Budgets are a
// security control here (they bound how fast a stolen caller identity can
// use cards), not a courtesy. It must never hold card data: its keys are
// digests of the caller and destination ids.
package ratelimit
