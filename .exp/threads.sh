#!/bin/bash
# threads.sh SECONDS : per-thread utime/stime (ticks) of the gateway over SECONDS
gw=$(pgrep -f 'gateway/main.ts' | head -1)
snap() { for t in /proc/$gw/task/*; do echo "$(basename $t) $(cat $t/comm | tr ' ' _) $(awk '{print $14, $15}' $t/stat)"; done; }
snap > /tmp/t0; sleep $1; snap > /tmp/t1
join <(sort /tmp/t0) <(sort /tmp/t1) | awk '{du=$6-$3; ds=$7-$4; if (du+ds>0) printf "%s %-16s user %5d sys %5d (ticks)\n", $1, $2, du, ds; tu+=du; ts+=ds} END {printf "total user %d sys %d\n", tu, ts}'
