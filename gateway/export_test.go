package gateway

// StopBackground stops what g runs beside the server (the configuration
// source, then the reconcile workers) and leaves the server and its
// sessions running, as the first step of Shutdown does: a test that must
// count the pool's connections with no dial in flight calls it first.
func StopBackground(g *Gateway) { g.stopParts() }
