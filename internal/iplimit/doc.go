// Package iplimit bounds what one client address may take of the gateway:
// the connections it holds open at once, and the rate at which it opens
// sessions (a token bucket: Burst at once, then Rate per second).
//
// It owns the table of addresses and their counts. A Limiter is safe for
// concurrent use, by design for this traffic: the acceptor goroutines
// call Admit for each accepted connection, the event loops call Release
// when one closes, the owner calls Sweep every few seconds, and the admin
// scrape reads Stats. The table is split in 64 shards by a seeded hash of
// the address, each behind its own mutex, so loops releasing connections
// and acceptors admitting them rarely meet on one lock; the counters are
// per shard too.
//
// What counts as one client: an IPv4 address; an IPv6 /64, since a
// single host commonly holds a whole /64 (SLAAC, rotating privacy
// addresses) and could otherwise take a fresh limit with each address in
// it. An IPv4-mapped IPv6 address (a dual-stack listener's IPv4 peer) is
// the IPv4 address; zones are ignored. Clients behind one NAT share an
// address, and so its limits.
//
// Memory: an address is tracked while it has a connection open or its
// bucket is not full; an address with neither is the same as an untracked
// one, and its entry is dropped: at once by Release when the bucket is
// already full then, otherwise by Sweep, which the owner calls every few
// seconds (a full pass, one shard locked at a time), or by an Admit that
// finds its shard full. The table never holds more than MaxEntries
// addresses, split evenly among the shards.
//
// A full table (a shard full of addresses with connections open or
// buckets refilling) admits a new address without tracking it
// (Untracked): its connection is not counted, nor its rate. Refusing
// instead would let whoever fills the table with many addresses lock
// every new client out; and whoever can fill it holds so many addresses
// that per-address limits do not bind them anyway. The gateway's own
// bound on open connections still holds, and Stats counts untracked
// admissions so that a full table shows. Size MaxEntries above that bound
// on open connections, so that addresses with connections open can never
// fill the table by themselves; the rest empties within Burst/Rate
// seconds and a Sweep.
package iplimit
