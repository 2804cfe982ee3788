package admin

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// writePoolsText writes the pools view as two aligned tables, like
// PgBouncer's SHOW POOLS: one row per backend, then one row per shard and
// backend.
func writePoolsText(w io.Writer, v PoolsView) error {
	ready := "ready"
	if !v.Ready {
		ready = "NOT READY: " + v.Reason
	}
	src := ""
	if v.Config.Source != "" {
		src = " from " + v.Config.Source
	}
	fmt.Fprintf(w, "# %s  config v%d%s (last reload: %s)  %s\n\n", v.Time.Format(time.RFC3339), v.Config.Version, src, v.Config.LastReload, ready)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tBACKEND\tGROUP\tSTATE\tHEALTH\tPOLICY\tDIALING\tIDLE\tLEASED\tRELEASING\tCLOSING\tTOTAL\tTARGET\tMAX\tLEASES\tRELEASES\tDIAL_FAILURES\tFAILURES\tSTRAY\tBACKOFF")
	for _, b := range v.Backends {
		health := "up"
		if !b.Healthy {
			health = "down"
		}
		backoff := "-"
		if b.BackoffUntil != nil {
			backoff = time.Until(*b.BackoffUntil).Round(time.Millisecond).String()
		}
		maxConns := "none"
		if b.Max > 0 {
			maxConns = strconv.Itoa(b.Max)
		}
		if b.AtMax {
			maxConns += " (reached)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n",
			b.ID, b.URL, b.Group, b.State, health, b.Policy, b.Dialing, b.Idle, b.Leased, b.Releasing, b.Closing, b.Total,
			b.Target, maxConns, b.Leases, b.Releases, b.DialFailures, b.Failures, b.Stray, backoff)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tSESSIONS\tWAITING\tID\tBACKEND\tDIALING\tIDLE\tLEASED\tRELEASING")
	for _, s := range v.Shards {
		if len(s.Backends) == 0 {
			fmt.Fprintf(tw, "%d\t%d\t%d\t-\t-\t-\t-\t-\t-\n", s.Shard, s.Sessions, s.Waiting)
		}
		for _, b := range s.Backends {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\n",
				s.Shard, s.Sessions, s.Waiting, b.ID, b.URL, b.Dialing, b.Idle, b.Leased, b.Releasing)
		}
	}
	return tw.Flush()
}
